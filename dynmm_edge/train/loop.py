"""DynMM training loop: stage I (random path per sample), stage II (gate joint, straight-through,
resource loss), and an optional gate-only stage (trunk frozen) that is cheap and retrofits a static
model into a dynamic one.

Reproducibility: every random choice (batch order, augmentation, stage-I paths, Gumbel noise) is a
pure function of (seed, epoch, rank, step), and the LR/temperature schedules are functions of the
step. A checkpoint after every epoch (state.pt, written atomically: model + optimizer + torch RNG
+ history) is therefore enough for --resume to continue exactly.
"""
import json
import math
import platform
import sys
import time
import warnings
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from dynmm_edge.errors import CheckpointError, DataError
from dynmm_edge.train import losses as L
from dynmm_edge.train.data import AugmentConfig, NO_AUGMENT, collate, open_dataset
from dynmm_edge.train.distributed import (DistInfo, all_reduce_mean, all_reduce_sum_tensor, barrier,
                                          init_distributed, sync_buffers, wrap_ddp)
from dynmm_edge.train.evaluate import depth_macs_per_path, evaluate
from dynmm_edge.train.schedule import cosine_lr, one_cycle_lr, temperature_at

STATE_FILE = "state.pt"
FINAL_FILE = "final.pt"
METRICS_FILE = "metrics.jsonl"
OPTIMIZERS = ("adamw", "sgd")
FRAME_LOSSES = ("class_mean", "pixel_mean", "pixel_error")
GATE_OBJECTIVES = ("expected", "price", "argmin")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on (stored in state.pt and in the final checkpoint's meta).

    budget: target expected depth cost as a FRACTION of the full-depth path's depth-encoder MACs.
    resource_lambda: weight of relu(expected fraction - budget) (normalised cost, so ~1 works).
    epochs_gate: gate-only epochs after stage II (trunk frozen, per-path losses computed once).
    stage1_end_prob: share of stage-I samples given path 0 or the full path (split evenly);
    0 = uniform over all paths. The gate mostly ends up choosing the two ends, so they deserve more.
    gate_frame_loss: per-frame target of the gate stage ('class_mean' matches mIoU, see frame_losses).
    oracle_tolerance: > 0 switches the gate stage to oracle distillation: each frame's target is the
    cheapest path whose frame loss is within this much of the full path's, and the gate learns it by
    cross-entropy (no resource loss: the tolerance sets the cost). A direct, per-frame signal that a
    budget-constrained expected loss gives only weakly when paths differ little.
    gate_objective: gate-stage objective. 'expected': expected frame loss + resource hinge on the batch
    mean (the original; warns when the hinge never binds). 'price': every frame pays its own price,
    expected frame loss + gate_mu x expected cost. 'argmin': distil, by cross-entropy, each frame's
    argmin over paths of (frame loss + mu x cost), mu = gate_mu, or (gate_mu < 0) the mu whose
    targets have mean cost = budget. Use with gate_frame_loss='pixel_error' (share of wrong pixels).
    gate_balance: argmin only: weight each target path's CE by (frequency)^-gate_balance (0 = plain CE,
    0.5 = square-root balancing), so rarely best paths (RGB-only for failed depth) are not drowned out.
    gate_cues: with --init-from a model whose raw gate has no cues, replace its gate by a CueGate
    (model/gate.py); the rest of the weights are kept.
    stop_after: end this invocation after that many epochs (time-sliced/preemptible jobs; continue
    with resume=True); 0 = run to the end. max_batches: cap batches per epoch (smoke tests).
    """
    preset: str = "demo"
    data: str = "synthetic://?frames=2000&hard_fraction=0.3&seed=0"
    val_data: str = ""
    out: str = "runs/train"
    epochs_stage1: int = 10
    epochs_stage2: int = 2
    epochs_gate: int = 0
    budget: float = 0.5
    resource_lambda: float = 1.0
    batch_size: int = 16
    lr: float = 2e-3
    gate_lr: float = 1e-2
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    momentum: float = 0.9
    temp_start: float = 1.0
    temp_end: float = 1e-3
    gumbel: bool = False
    stage1_end_prob: float = 0.0
    gate_frame_loss: str = "class_mean"
    oracle_tolerance: float = 0.0
    gate_objective: str = "expected"
    gate_mu: float = -1.0
    gate_balance: float = 0.0
    gate_cues: bool = False
    class_weighting: bool = True
    augment: bool = True
    seed: int = 0
    threads: int = 2
    resume: bool = False
    init_from: str = ""
    eval_every: int = 0
    progress: bool = True
    max_batches: int = 0
    stop_after: int = 0
    command: str = ""

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer={self.optimizer!r}: must be one of {OPTIMIZERS}")
        for name in ("epochs_stage1", "epochs_stage2", "epochs_gate", "eval_every", "max_batches", "stop_after"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0")
        if self.batch_size < 1:
            raise ValueError("TrainConfig.batch_size must be >= 1")
        if not 0.0 <= self.budget <= 1.0:
            raise ValueError(f"TrainConfig.budget={self.budget}: a fraction of full-depth MACs in [0, 1]")
        if not self.oracle_tolerance >= 0:
            raise ValueError(f"TrainConfig.oracle_tolerance={self.oracle_tolerance!r}: must be >= 0")
        if self.gate_frame_loss not in FRAME_LOSSES:
            raise ValueError(f"TrainConfig.gate_frame_loss={self.gate_frame_loss!r}: one of {FRAME_LOSSES}")
        if self.gate_objective not in GATE_OBJECTIVES:
            raise ValueError(f"TrainConfig.gate_objective={self.gate_objective!r}: one of {GATE_OBJECTIVES}")
        if not (math.isfinite(self.gate_balance) and 0.0 <= self.gate_balance <= 1.0):
            raise ValueError(f"TrainConfig.gate_balance={self.gate_balance!r}: must be in [0, 1]")
        if not math.isfinite(self.gate_mu):
            raise ValueError(f"TrainConfig.gate_mu={self.gate_mu!r}: must be finite (< 0 = from the budget)")
        if not 0.0 <= self.stage1_end_prob <= 1.0:
            raise ValueError("TrainConfig.stage1_end_prob must be in [0, 1]")
        if self.lr <= 0 or self.gate_lr <= 0:
            raise ValueError("TrainConfig.lr and gate_lr must be > 0")

    @property
    def total_epochs(self) -> int:
        return self.epochs_stage1 + self.epochs_stage2 + self.epochs_gate

    def stage_of(self, epoch: int) -> str:
        if epoch < self.epochs_stage1:
            return "stage1"
        if epoch < self.epochs_stage1 + self.epochs_stage2:
            return "stage2"
        return "gate"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"TrainConfig: unknown key(s) {unknown}")
        return cls(**d)


# --------------------------------------------------------------------------------- helpers
def build_model_and_meta(cfg: TrainConfig):
    """(model, meta) from the preset, or from --init-from (our checkpoint or an imported one)."""
    from dynmm_edge.data import synthetic as S
    from dynmm_edge.data.preprocess import PreprocessConfig
    from dynmm_edge.model.net import DynMMNet
    from dynmm_edge.model.presets import get_preset

    meta: Dict[str, object] = {}
    if cfg.init_from:
        from dynmm_edge.model import checkpoints

        try:
            loaded = checkpoints.load_model(cfg.init_from)
        except (CheckpointError, DataError):
            raise
        except Exception as exc:
            raise CheckpointError(f"{cfg.init_from}: cannot initialise from it: {exc}") from exc
        model, meta = loaded if isinstance(loaded, tuple) else (loaded, {})
        meta = dict(meta or {})
        if cfg.gate_cues and not model.config.gate_cues:
            model = _with_cue_gate(model, cfg.seed)
    else:
        torch.manual_seed(cfg.seed)
        mc = get_preset(cfg.preset)
        model = DynMMNet(mc.replace(gate_cues=True) if cfg.gate_cues and mc.gate == "raw" else mc)
    mc = model.config
    if meta.get("preprocess"):
        pre = PreprocessConfig.from_dict(dict(meta["preprocess"]))
        pre = replace(pre, height=mc.height, width=mc.width)
    else:
        pre = PreprocessConfig(height=mc.height, width=mc.width, depth_mean=S.DEPTH_MEAN_MM,
                               depth_std=S.DEPTH_STD_MM)
    classes = list(meta.get("classes") or (S.CLASS_NAMES if mc.num_classes == len(S.CLASS_NAMES)
                                            else [f"class{i}" for i in range(mc.num_classes)]))
    palette = meta.get("palette") or [list(c) for c in S.PALETTE][:mc.num_classes]
    out = {"classes": classes, "palette": [list(map(int, c)) for c in palette], "preprocess": pre}
    if isinstance(meta.get("train"), dict) and meta["train"]:
        out["parent_train"] = dict(meta["train"])  # provenance of the --init-from checkpoint
    return model, out


def _with_cue_gate(model, seed: int):
    """The same network with a fresh CueGate in place of its raw gate (all other weights kept)."""
    from dynmm_edge.model.net import rebuilt

    if model.config.gate != "raw":
        raise CheckpointError("--gate-cues needs a model with the raw gate (the stem gate has no cue variant)")
    torch.manual_seed(seed)
    try:
        return rebuilt(model, "gate.", gate_cues=True)
    except ValueError as exc:
        raise CheckpointError(f"cannot move weights to the cue-gate model: {exc}") from None


class _TrainStep(nn.Module):
    """One forward for DDP: stage1 (given one-hot weights), stage2 (gate + straight-through), gate."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, rgb, depth, mode: str, weights=None, temperature: float = 1.0, noise=None):
        m = self.model
        if mode == "stage1":
            return m.forward_blend(rgb, depth, weights), None
        glog, extras = m.gate_forward(rgb, depth)
        if mode == "gate":
            return None, glog
        z = glog if noise is None else glog + noise
        soft = F.softmax(z / max(float(temperature), 1e-6), dim=1)
        hard = torch.zeros_like(soft).scatter_(1, soft.argmax(1, keepdim=True), 1.0)
        w = hard - soft.detach() + soft
        return m.forward_blend(rgb, depth, w, extras), glog


def stage1_path_probs(num_paths: int, end_prob: float) -> torch.Tensor:
    """Sampling probabilities of each path in stage I (uniform when end_prob is 0)."""
    if end_prob <= 0 or num_paths <= 2:
        return torch.full((num_paths,), 1.0 / num_paths)
    p = torch.full((num_paths,), (1.0 - end_prob) / (num_paths - 2))
    p[0] = p[-1] = end_prob / 2
    return p


def _loader(dataset, cfg: TrainConfig, epoch: int, info: DistInfo, shuffle=True):
    bs = cfg.batch_size
    drop_last = len(dataset) // max(info.world_size, 1) >= 2 * bs
    if info.enabled:
        sampler = torch.utils.data.distributed.DistributedSampler(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle, seed=cfg.seed,
            drop_last=True)
        sampler.set_epoch(epoch)
    elif shuffle:
        g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        sampler = torch.utils.data.RandomSampler(dataset, generator=g)
    else:
        sampler = torch.utils.data.SequentialSampler(dataset)
    return torch.utils.data.DataLoader(dataset, batch_size=bs, sampler=sampler, num_workers=0,
                                       collate_fn=collate, drop_last=drop_last)


def _make_optimizer(cfg: TrainConfig, model, stage: str):
    """Stage I/II: one optimizer over everything (gate group at gate_lr); gate stage: gate only."""
    gate_params = list(model.gate.parameters())
    gate_ids = {id(p) for p in gate_params}
    if stage == "gate":
        return torch.optim.Adam(gate_params, lr=cfg.gate_lr)
    trunk = [p for p in model.parameters() if id(p) not in gate_ids]
    groups = [{"params": trunk, "lr": cfg.lr}, {"params": gate_params, "lr": cfg.gate_lr}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _opt_kind(stage: str) -> str:
    return "gate" if stage == "gate" else "joint"


def _log(info: DistInfo, path: Path, record: dict):
    if info.is_main:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, allow_nan=False) + "\n")


def _save_state(path: Path, model, optimizer, opt_kind, epochs_done, cfg, history, class_w):
    from dynmm_edge.atomic import atomic_path

    state = {
        "format": "dynmm_edge.train_state/1",
        "epochs_done": int(epochs_done),
        "model": model.state_dict(),
        "model_config": model.config.to_dict(),
        "optimizer": optimizer.state_dict(),
        "optimizer_kind": opt_kind,
        "torch_rng": torch.get_rng_state(),
        "config": cfg.to_dict(),
        "history": json.dumps(history),
        "class_weights": class_w,
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def load_state(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no training state to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read training state: {exc}") from exc
    for key in ("epochs_done", "model", "optimizer", "optimizer_kind", "config"):
        if key not in state:
            raise CheckpointError(f"{path}: training state lacks key {key!r}")
    return state


def frame_losses(logits, labels, class_w, mode: str = "class_mean") -> torch.Tensor:
    """Per-frame loss [B] used as the gate-stage target.

    'pixel_error': share of labelled pixels the path gets wrong (the 0-1 pixel loss).
    'pixel_mean': weighted CE averaged over labelled pixels. 'class_mean': the CE of each class
    present in the frame averaged over its pixels, then over the classes: a small object the RGB
    cannot separate (camouflage) then counts as much as the floor, as it does in mIoU.
    """
    valid = labels != 255
    if mode == "pixel_error":
        v = valid.float()
        wrong = (logits.argmax(1) != labels).float() * v
        return wrong.sum((1, 2)) / v.sum((1, 2)).clamp_min(1)
    ce = F.cross_entropy(logits, labels, weight=class_w, ignore_index=255, reduction="none")
    if mode == "pixel_mean":
        v = valid.float()
        return (ce * v).sum((1, 2)) / v.sum((1, 2)).clamp_min(1)
    nc = logits.shape[1]
    b = labels.shape[0]
    lab = torch.where(valid, labels, torch.zeros_like(labels)).reshape(b, -1)
    w = valid.reshape(b, -1).float()
    sums = torch.zeros(b, nc).scatter_add_(1, lab, ce.reshape(b, -1) * w)
    counts = torch.zeros(b, nc).scatter_add_(1, lab, w)
    present = counts > 0
    per_class = sums / counts.clamp_min(1)
    return (per_class * present).sum(1) / present.sum(1).clamp_min(1)


def oracle_paths(per_path_loss: torch.Tensor, tolerance: float) -> torch.Tensor:
    """Index of the cheapest path (paths are ordered by cost) whose loss is within `tolerance` of the
    most expensive path's loss, per frame: [N, P] -> [N]."""
    ok = per_path_loss <= per_path_loss[:, -1:] + tolerance
    return ok.to(torch.int64).argmax(1)  # first True = cheapest acceptable path


def argmin_targets(per_path_loss: torch.Tensor, costs: torch.Tensor, mu: float) -> torch.Tensor:
    """Per frame, the path index minimising loss + mu x normalised cost ([N, P] -> [N]); ties go to
    the cheaper path (paths are ordered by cost)."""
    price = per_path_loss + float(mu) * costs.to(per_path_loss)[None, :]
    best = price.min(1, keepdim=True).values
    return (price <= best + 1e-9).to(torch.int64).argmax(1)


def mu_for_budget(per_path_loss: torch.Tensor, costs: torch.Tensor, budget: float, iters: int = 60) -> float:
    """The mu (bisection, log scale) whose argmin targets have mean normalised cost closest to `budget`
    from below: the budget prices depth once, for all frames, instead of a batch-mean hinge."""
    costs = costs.to(per_path_loss)
    mean_cost = lambda mu: float(costs[argmin_targets(per_path_loss, costs, mu)].mean())  # noqa: E731
    if mean_cost(0.0) <= budget:
        return 0.0
    lo, hi = 1e-6, 1.0
    while mean_cost(hi) > budget and hi < 1e6:
        hi *= 4
    for _ in range(iters):
        mid = math.sqrt(lo * hi)
        if mean_cost(mid) > budget:
            lo = mid
        else:
            hi = mid
    return hi


def _per_path_losses(model, dataset, cfg: TrainConfig, class_w, info: DistInfo) -> torch.Tensor:
    """[N, P] mean CE of each training frame under each path (trunk frozen, eval mode, no augmentation).

    Computed once for the gate stage: the gate then learns which frames need depth at ~no cost.
    """
    model.eval()
    n, p = len(dataset), len(model.paths)
    out = torch.zeros(n, p)
    aug = dataset.augment
    dataset.augment = NO_AUGMENT
    try:
        idx = list(range(info.rank, n, info.world_size))
        with torch.no_grad():
            for s in range(0, len(idx), cfg.batch_size):
                items = [dataset[i] for i in idx[s:s + cfg.batch_size]]
                b = collate(items)
                for j, path in enumerate(model.paths):
                    logits = model(b["rgb"], b["depth"], path=path)
                    out[torch.tensor(b["index"]), j] = frame_losses(logits, b["labels"], class_w,
                                                                    cfg.gate_frame_loss)
    finally:
        dataset.augment = aug
    return all_reduce_sum_tensor(out, info)


# --------------------------------------------------------------------------------- main entry
@dataclass
class _Run:
    """What one training invocation holds between epochs (built by _setup)."""
    cfg: TrainConfig
    info: DistInfo
    out: Path
    model: nn.Module
    meta: dict
    dataset: object
    val: object
    aug: AugmentConfig
    costs: torch.Tensor
    class_w: torch.Tensor
    history: List[dict]
    state: Optional[dict]
    start_epoch: int
    t_start: float
    stage1_probs: torch.Tensor
    optimizer: object = None
    opt_kind: Optional[str] = None
    step_module: object = None
    path_losses: Optional[torch.Tensor] = None
    gate_targets: Optional[torch.Tensor] = None
    target_weights: Optional[torch.Tensor] = None

    @property
    def metrics_path(self) -> Path:
        return self.out / METRICS_FILE


def _resume_state(cfg: TrainConfig, out: Path, model):
    """(state, start_epoch, history) from OUT/state.pt when resuming, else (None, 0, [])."""
    if not (cfg.resume and (out / STATE_FILE).exists()):
        return None, 0, []
    state = load_state(out / STATE_FILE)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{out / STATE_FILE}: model does not match the run's preset: {exc}") from exc
    saved = dict(state["config"])
    for key in ("preset", "data", "seed", "batch_size", "init_from"):
        if key in saved and saved[key] != getattr(cfg, key):
            raise CheckpointError(f"{out / STATE_FILE}: cannot resume with {key}={getattr(cfg, key)!r}; "
                                  f"the run was started with {key}={saved[key]!r}")
    return state, int(state["epochs_done"]), json.loads(state.get("history", "[]"))


def _setup(cfg: TrainConfig) -> _Run:
    torch.set_num_threads(max(1, int(cfg.threads)))
    info = init_distributed()
    out = Path(cfg.out)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
    barrier(info)
    t_start = time.time()
    model, meta = build_model_and_meta(cfg)
    pre = meta["preprocess"]
    nc = model.config.num_classes
    aug = AugmentConfig() if cfg.augment else NO_AUGMENT
    dataset = open_dataset(cfg.data, pre, split="train", augment=aug, num_classes=nc,
                           progress=cfg.progress and info.is_main)
    dataset.seed = cfg.seed
    val = open_dataset(cfg.val_data, pre, split="test", num_classes=nc) if cfg.val_data else None
    costs = L.normalised_path_costs(depth_macs_per_path(model))
    state, start_epoch, history = _resume_state(cfg, out, model)
    if state is not None and "class_weights" in state:
        class_w = state["class_weights"]
    elif cfg.class_weighting:
        class_w = L.class_weights_from_counts(L.label_counts(dataset.label_arrays(), nc), nc)
    else:
        class_w = torch.ones(nc)
    return _Run(cfg, info, out, model, meta, dataset, val, aug, costs, class_w, history, state, start_epoch,
                t_start, stage1_path_probs(len(model.paths), cfg.stage1_end_prob))


def _enter_stage(run: _Run, epoch: int, stage: str) -> None:
    """New optimizer (and DDP wrapper) when the stage changes; restores optimizer/RNG on resume."""
    cfg, model, state = run.cfg, run.model, run.state
    if _opt_kind(stage) != run.opt_kind:
        run.opt_kind = _opt_kind(stage)
        if stage == "gate":
            for name, prm in model.named_parameters():
                prm.requires_grad_(name.startswith("gate."))
        run.optimizer = _make_optimizer(cfg, model, stage)
        if state is not None and state["optimizer_kind"] == run.opt_kind and epoch == run.start_epoch:
            run.optimizer.load_state_dict(state["optimizer"])
        if state is not None and epoch == run.start_epoch and "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        run.step_module = wrap_ddp(_TrainStep(model), run.info)
    if stage == "gate" and run.path_losses is None:
        run.path_losses = _per_path_losses(model, run.dataset, cfg, run.class_w, run.info)
        if cfg.gate_objective == "argmin":
            mu = cfg.gate_mu if cfg.gate_mu >= 0 else mu_for_budget(run.path_losses, run.costs, cfg.budget)
            run.gate_targets = argmin_targets(run.path_losses, run.costs, mu)
            freq = torch.bincount(run.gate_targets, minlength=len(model.paths)).float().clamp_min(1)
            w = freq.pow(-cfg.gate_balance)
            run.target_weights = w * len(w) / w.sum() if cfg.gate_balance > 0 else None
            rec = {"type": "gate_targets", "mu": mu, "target_mean_cost": float(run.costs[run.gate_targets].mean()),
                   "target_histogram": {str(p): int(c) for p, c in
                                        zip(model.paths, torch.bincount(run.gate_targets, minlength=len(model.paths)))}}
            run.history.append(rec)
            _log(run.info, run.metrics_path, rec)


def _stage_losses(run: _Run, stage: str, batch, epoch: int, bi: int, n_batches: int, gen):
    """(seg, res, expected cost or None, chosen path index per sample [B], temperature)."""
    cfg, model = run.cfg, run.model
    rgb, depth, labels = batch["rgb"], batch["depth"], batch["labels"]
    if stage == "stage1":
        choice = torch.multinomial(run.stage1_probs, rgb.shape[0], replacement=True, generator=gen)
        w = F.one_hot(choice, len(model.paths)).float()
        logits, _ = run.step_module(rgb, depth, "stage1", weights=w)
        seg = L.segmentation_loss(logits, labels, run.class_w)
        return seg, seg * 0.0, None, choice, None
    n_s12 = cfg.epochs_stage1 + cfg.epochs_stage2
    if stage == "stage2":
        s2 = (epoch - cfg.epochs_stage1) * n_batches + bi
        temp = temperature_at(s2, cfg.epochs_stage2 * n_batches, cfg.temp_start, cfg.temp_end)
        noise = None
        if cfg.gumbel:
            u = torch.rand(rgb.shape[0], len(model.paths), generator=gen).clamp(1e-9, 1 - 1e-9)
            noise = -torch.log(-torch.log(u))
        logits, glog = run.step_module(rgb, depth, "stage2", temperature=temp, noise=noise)
        seg = L.segmentation_loss(logits, labels, run.class_w)
        probs = F.softmax(glog / max(temp, 1e-6), dim=1)
        res = L.resource_loss(F.softmax(glog, dim=1), run.costs, cfg.budget, cfg.resource_lambda)
        return seg, res, float(L.expected_cost(probs.detach(), run.costs)), glog.argmax(1), temp
    gs = (epoch - n_s12) * n_batches + bi
    temp = temperature_at(gs, cfg.epochs_gate * n_batches, cfg.temp_start, max(cfg.temp_end, 0.05))
    _, glog = run.step_module(rgb, depth, "gate")
    probs = F.softmax(glog / temp, dim=1)
    idx = torch.tensor(batch["index"])
    per = run.path_losses[idx]
    if cfg.oracle_tolerance > 0:
        seg, res = F.cross_entropy(glog, oracle_paths(per, cfg.oracle_tolerance)), torch.zeros(())
    elif cfg.gate_objective == "argmin":
        seg, res = F.cross_entropy(glog, run.gate_targets[idx], weight=run.target_weights), torch.zeros(())
    elif cfg.gate_objective == "price":
        mu = cfg.gate_mu if cfg.gate_mu >= 0 else 0.0
        seg = (probs * per).sum(1).mean()
        res = mu * L.expected_cost(probs, run.costs)
    else:
        seg = (probs * per).sum(1).mean()
        res = L.resource_loss(probs, run.costs, cfg.budget, cfg.resource_lambda)
    return seg, res, float(L.expected_cost(probs.detach(), run.costs)), glog.argmax(1), temp


def _run_epoch(run: _Run, epoch: int, stage: str) -> dict:
    """One pass over the data; returns the epoch record (already all-reduced)."""
    cfg, model, info = run.cfg, run.model, run.info
    run.dataset.set_epoch(epoch)
    # the gate stage's targets are per-frame losses of un-augmented frames: show the gate the same
    run.dataset.augment = NO_AUGMENT if stage == "gate" else run.aug
    loader = _loader(run.dataset, cfg, epoch, info)
    n_batches = len(loader) if not cfg.max_batches else min(len(loader), cfg.max_batches)
    _set_train_mode(model, stage)
    sums = {"loss": 0.0, "seg": 0.0, "res": 0.0, "cost": 0.0}
    hist = torch.zeros(len(model.paths), dtype=torch.long)
    temp, count, bar = None, 0, None
    n_s12 = cfg.epochs_stage1 + cfg.epochs_stage2
    if cfg.progress and info.is_main:
        from tqdm import tqdm
        bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{cfg.total_epochs} {stage}", leave=False)
    for bi, batch in enumerate(loader):
        if bi >= n_batches:
            break
        gen = torch.Generator().manual_seed(((cfg.seed * 1009 + epoch) * 7919 + bi) * 31 + info.rank)
        if stage in ("stage1", "stage2"):
            run.optimizer.param_groups[0]["lr"] = one_cycle_lr(epoch * n_batches + bi, n_s12 * n_batches, cfg.lr)
        else:
            run.optimizer.param_groups[0]["lr"] = cosine_lr((epoch - n_s12) * n_batches + bi,
                                                            cfg.epochs_gate * n_batches, cfg.gate_lr)
        seg, res, cost, chosen, temp = _stage_losses(run, stage, batch, epoch, bi, n_batches, gen)
        if cost is not None:
            sums["cost"] += cost
        hist += torch.bincount(chosen, minlength=len(model.paths))
        loss = seg + res
        if not torch.isfinite(loss):
            raise DataError(f"non-finite loss at epoch {epoch} batch {bi} (frames {batch['index']})")
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        sums["loss"] += float(loss.detach())
        sums["seg"] += float(seg.detach())
        sums["res"] += float(res.detach())
        count += 1
        if bar is not None:
            bar.set_postfix(loss=f"{float(loss):.3f}", T=("-" if temp is None else f"{temp:.3g}"))
            bar.update(1)
    if bar is not None:
        bar.close()
    hist = all_reduce_sum_tensor(hist, info)
    sync_buffers(model, info)
    mean = lambda key: all_reduce_mean(sums[key] / max(count, 1), info)  # noqa: E731
    return {"type": "epoch", "epoch": epoch + 1, "stage": stage, "loss": mean("loss"), "seg_loss": mean("seg"),
            "resource_loss": mean("res"), "expected_depth_cost": mean("cost") if stage != "stage1" else None,
            "temperature": temp, "lr": run.optimizer.param_groups[0]["lr"], "batches": count,
            "path_histogram": {str(p): int(c) for p, c in zip(model.paths, hist.tolist())},
            "elapsed_s": round(time.time() - run.t_start, 2)}


def _set_train_mode(model, stage: str) -> None:
    if stage == "gate":
        model.eval()
        model.gate.train()
    else:
        model.train()


def _eval_record(run: _Run, epoch: int, stage: str) -> dict:
    rep = evaluate(run.model, run.val, run.meta["classes"], batch_size=run.cfg.batch_size)
    _set_train_mode(run.model, stage)
    return {"type": "eval", "epoch": epoch + 1, "stage": stage,
            "modes": {m: {"miou": r["miou"], "pixel_acc": r["pixel_acc"],
                          "depth_macs_fraction": r["depth_macs_fraction"]} for m, r in rep["modes"].items()},
            "path_histogram": rep["modes"]["dynamic"]["path_histogram"],
            "by_kind": {k: {m: v[m]["miou"] for m in ("dynamic", "rgb_only", "full_depth")}
                        for k, v in rep["by_kind"].items()}}


def stalled_gate_warning(history: List[dict], flat_rel: float = 0.01) -> Optional[str]:
    """A warning when the last two epochs of the same gate-training stage had a zero resource loss
    and a flat segmentation loss: the budget is not binding, so a constant path is optimal and the
    gate learns nothing per frame (what happened to the first demo model)."""
    ep = [h for h in history if h.get("type") == "epoch" and h.get("stage") in ("stage2", "gate")]
    if len(ep) < 2 or ep[-1]["stage"] != ep[-2]["stage"]:
        return None
    a, b = ep[-2], ep[-1]
    if a["resource_loss"] == 0 and b["resource_loss"] == 0 and \
            abs(b["seg_loss"] - a["seg_loss"]) <= flat_rel * max(abs(a["seg_loss"]), 1e-12):
        return (f"epoch {b['epoch']} ({b['stage']}): resource loss 0 and segmentation loss flat "
                f"({a['seg_loss']:.4f} -> {b['seg_loss']:.4f}): the budget {{budget}} is not binding, the gate "
                f"is learning a constant path; lower --budget or use --gate-objective argmin")
    return None


def train(cfg: TrainConfig) -> Dict[str, object]:
    """Run (or resume) training; returns {'final': path, 'metrics': path, 'history': [...], 'model': model}."""
    run = _setup(cfg)
    model, info, history = run.model, run.info, run.history
    end_epoch = cfg.total_epochs if not cfg.stop_after else min(cfg.total_epochs, run.start_epoch + cfg.stop_after)
    for epoch in range(run.start_epoch, end_epoch):
        stage = cfg.stage_of(epoch)
        _enter_stage(run, epoch, stage)
        rec = _run_epoch(run, epoch, stage)
        history.append(rec)
        _log(info, run.metrics_path, rec)
        warning = stalled_gate_warning(history) if cfg.gate_objective == "expected" else None
        if warning:
            warning = warning.replace("{budget}", f"{cfg.budget:g}")
            warnings.warn(warning, RuntimeWarning, stacklevel=2)
            wrec = {"type": "warning", "epoch": epoch + 1, "message": warning}
            history.append(wrec)
            _log(info, run.metrics_path, wrec)
        last_of_stage = epoch + 1 == cfg.total_epochs or cfg.stage_of(epoch + 1) != stage
        if run.val is not None and info.is_main and (last_of_stage or (cfg.eval_every and (epoch + 1) % cfg.eval_every == 0)):
            erec = _eval_record(run, epoch, stage)
            history.append(erec)
            _log(info, run.metrics_path, erec)
        if info.is_main:
            _save_state(run.out / STATE_FILE, model, run.optimizer, run.opt_kind, epoch + 1, cfg, history, run.class_w)
        barrier(info)

    for prm in model.parameters():
        prm.requires_grad_(True)
    model.eval()
    final = run.out / FINAL_FILE
    if end_epoch < cfg.total_epochs:  # stopped early on request: state.pt is the checkpoint
        return {"final": None, "metrics": str(run.metrics_path), "history": history, "model": model,
                "dist": info, "epochs_done": end_epoch}
    if info.is_main:
        save_final(final, model, run.meta, cfg, history, time.time() - run.t_start)
    barrier(info)
    return {"final": str(final), "metrics": str(run.metrics_path), "history": history, "model": model,
            "dist": info, "epochs_done": end_epoch}


def save_final(path, model, meta, cfg: TrainConfig, history, wall_s: float):
    """Our checkpoint format with classes, palette, preprocess constants and training metadata."""
    from dynmm_edge.model import checkpoints

    training = {
        "command": cfg.command or " ".join(sys.argv),
        "seed": cfg.seed,
        "epochs": {"stage1": cfg.epochs_stage1, "stage2": cfg.epochs_stage2, "gate": cfg.epochs_gate},
        "config": cfg.to_dict(),
        "wall_s": round(float(wall_s), 1),
        "machine": f"{platform.machine()} {platform.processor() or ''} threads={cfg.threads}".strip(),
        "metrics": history[-6:],
    }
    if meta.get("parent_train"):
        training["init_from"] = cfg.init_from
        training["parent"] = meta["parent_train"]
    full_meta = {"classes": list(meta["classes"]), "palette": meta["palette"],
                 "preprocess": meta["preprocess"].to_dict(), "train": training}
    checkpoints.save_checkpoint(path, model, full_meta)


def pack_checkpoint(src, dst, half: bool = True):
    """Copy one of our checkpoints, storing float weights as float16 (about half the size).

    load_model() builds a float32 model and load_state_dict casts back, so consumers see no
    difference beyond fp16 rounding of the weights. Falls back to float32 when a value would not
    fit in float16 (|x| > 65504). Returns the path written.
    """
    from dynmm_edge.model.checkpoints import load_model, save_checkpoint

    model, meta = load_model(str(src))
    if half:
        big = any(t.is_floating_point() and bool((t.abs() > 6.0e4).any()) for t in model.state_dict().values())
        if not big:
            model = model.half()
    meta = {k: v for k, v in meta.items() if k in ("classes", "palette", "preprocess", "train")}
    return save_checkpoint(dst, model, meta)

"""Region stage: train the per-tile region gate and fine-tune the tile depth stages under sparse depth.

Starts from a trained checkpoint (--init-from); everything of the dense model stays frozen, so every
static path and the frame gate are bit-identical afterwards.
  targets   per-tile gain of depth = RGB-only pixel loss - full-depth pixel loss, averaged over the
            tile (eager model, true skipping, no grad); computed once per training frame
  price     the gain a tile must exceed to be worth its depth MACs: the (1 - keep) quantile of all
            training gains (keep = the share of tiles worth it on the training frames), or --region-price
  tiles     the tile copies of depth stages 1..4 (+ their SE) learn to work on tiles without halos, and
            the region trunk (a copy of the dense trunk) learns to fuse spatially sparse depth:
            CE of region_forward under masks of a per-frame target share (the tiles with the
            largest gain, share drawn from [share_min, share_max], a few random tiles swapped in)
  gate      then, on its own (it reads only the dense model's gains): BCE(keep logit, gain > price)
            for gate_epochs on its cached input maps, BatchNorm in training mode; sigmoid(logit) > 0.5
            then means "worth it"
"""
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F

from dynmm_edge.model.region import region_forward
from dynmm_edge.train.losses import segmentation_loss


@dataclass(frozen=True)
class RegionTrainConfig:
    init_from: str
    out: str
    data: str = "synthetic://?frames=720&hard_fraction=0.3&seed=11"
    tile: int = 32
    epochs: int = 2
    batch_size: int = 8
    lr: float = 1e-3
    gate_lr: float = 1e-2
    trunk_lr: float = 5e-4
    keep: float = 0.35
    price: float = 0.0
    gate_epochs: int = 20
    gate_batch_size: int = 16
    gate_cues: bool = True
    share_min: float = 0.15
    share_max: float = 0.6
    random_tiles: float = 0.05
    seed: int = 0
    threads: int = 2
    progress: bool = False

    def __post_init__(self):
        if not self.init_from:
            raise ValueError("--stage region needs --init-from CKPT (a trained dynmm-edge checkpoint or 'demo')")
        if not 0.0 < self.share_min <= self.share_max <= 1.0:
            raise ValueError(f"share range [{self.share_min}, {self.share_max}] must lie in (0, 1]")
        if self.epochs < 1 or self.batch_size < 1 or self.gate_epochs < 1 or self.gate_batch_size < 1:
            raise ValueError("epochs and batch sizes must be >= 1")
        if not 0.0 < self.keep < 1.0:
            raise ValueError(f"keep share {self.keep} must lie in (0, 1)")
        if self.price < 0:
            raise ValueError(f"price {self.price} must be >= 0 (0: derived from the keep share)")


def with_region(model, tile: int, halo: str = "none", gate_cues: bool = False):
    """A copy of `model` with a region head (tile stages initialised from the dense depth stages)."""
    from dynmm_edge.model.net import rebuilt

    try:
        net = rebuilt(model, "region.", region_tile=int(tile), region_halo=halo, region_gate_cues=bool(gate_cues))
    except ValueError as exc:
        raise ValueError(f"cannot add a region head: {exc}") from None
    net.region.copy_from_dense(net)
    return net.eval()


def graft_region(dense_ckpt, region_ckpt, dst) -> Path:
    """Put the region head of `region_ckpt` onto `dense_ckpt` and save the result at `dst`.

    Why: the region stage trains only `region.*` and a gate-only stage trains only `gate.*`; both read
    the same frozen dense weights, so the two trainings compose. Any other difference is refused,
    because the region head would then see features it was not trained on.
    """
    from dynmm_edge.errors import CheckpointError
    from dynmm_edge.model.checkpoints import load_model, save_checkpoint

    base, meta = load_model(str(dense_ckpt))
    donor, donor_meta = load_model(str(region_ckpt))
    if getattr(donor, "region", None) is None:
        raise CheckpointError(f"{region_ckpt}: has no region head to graft (train it with --stage region)")
    own, theirs = base.state_dict(), donor.state_dict()
    shared = [k for k in own if not k.startswith(("gate.", "region.")) and k in theirs]
    differ = [k for k in shared if not torch.equal(own[k].float(), theirs[k].float())]
    missing = [k for k in own if not k.startswith(("gate.", "region.")) and k not in theirs]
    if differ or missing:
        raise CheckpointError(f"{region_ckpt} and {dense_ckpt} differ outside gate.* and region.* "
                              f"({len(differ)} tensors differ, e.g. {(differ or missing)[:3]}): retrain the region stage")
    net = with_region(base, donor.config.region_tile, donor.config.region_halo, donor.config.region_gate_cues)
    net.region.load_state_dict(donor.region.state_dict())
    meta = {k: v for k, v in meta.items() if k in ("classes", "palette", "preprocess", "train")}
    meta["train"] = dict(meta.get("train") or {}, region=(donor_meta.get("train") or {}).get("region"),
                         region_grafted_from=str(region_ckpt))
    return save_checkpoint(dst, net, meta)


def pixel_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-pixel CE [B, H, W] (ignored pixels 0)."""
    return F.cross_entropy(logits, labels, ignore_index=255, reduction="none")


def tile_mean(x: torch.Tensor, tile: int) -> torch.Tensor:
    """[B, H, W] -> [B, rows, cols] mean over each tile."""
    return F.avg_pool2d(x[:, None].float(), tile)[:, 0]


@torch.no_grad()
def tile_gain(net, rgb, depth, labels) -> torch.Tensor:
    """Per-tile gain of depth: RGB-only pixel loss - full-depth pixel loss, tile mean [B, rows, cols]."""
    lo, hi = min(net.paths), max(net.paths)
    loss0 = pixel_loss(net(rgb, depth, path=lo), labels)
    loss5 = pixel_loss(net(rgb, depth, path=hi), labels)
    return tile_mean(loss0 - loss5, net.config.region_tile)


def training_masks(gain: torch.Tensor, cfg: RegionTrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Per frame: the top share of tiles by gain (share drawn per frame), a few random tiles swapped in."""
    b, rows, cols = gain.shape
    flat = gain.reshape(b, -1)
    n = flat.shape[1]
    masks = torch.zeros_like(flat)
    for i in range(b):
        share = cfg.share_min + (cfg.share_max - cfg.share_min) * float(torch.rand(1, generator=gen))
        k = max(1, int(round(share * n)))
        masks[i, flat[i].argsort(descending=True)[:k]] = 1.0
        flip = torch.rand(n, generator=gen) < cfg.random_tiles
        masks[i, flip] = 1.0 - masks[i, flip]
    return masks.reshape(b, rows, cols)


def _frames(ds, order, batch_size: int):
    from dynmm_edge.train.data import collate

    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield idx, collate([ds[i] for i in idx])


@torch.no_grad()
def training_gains(net, ds, batch_size: int):
    """([N, rows, cols] per-tile gain, [N, ...] the region gate's input maps) of every training frame: the
    dense model is frozen, so both are computed once, and the gate then trains without re-rendering or
    re-reading frames (its inputs are 1/4-resolution maps: ~90 MB for 720 demo frames)."""
    g, gate = net.region.grid, net.region.gate
    gains, inputs = torch.zeros(len(ds), g.rows, g.cols), None
    for idx, b in _frames(ds, list(range(len(ds))), batch_size):
        x = gate.inputs(b["rgb"], b["depth"])
        if inputs is None:
            inputs = torch.zeros((len(ds),) + tuple(x.shape[1:]))
        at = torch.tensor(idx)
        gains[at], inputs[at] = tile_gain(net, b["rgb"], b["depth"], b["labels"]), x
    return gains, inputs


def price_for(gains: torch.Tensor, cfg: RegionTrainConfig) -> float:
    """The per-tile price: --region-price, or the gain exceeded by a `keep` share of the training tiles."""
    return float(cfg.price) if cfg.price > 0 else float(torch.quantile(gains.flatten(), 1.0 - cfg.keep))


def _train_tiles(net, ds, gains, cfg: RegionTrainConfig, log, t0) -> int:
    """Tile stages + region trunk under per-frame target-share masks (BatchNorm statistics frozen)."""
    params = [{"params": list(net.region.layers.parameters()) + list(net.region.se_depth.parameters()), "lr": cfg.lr},
              {"params": list(net.region.trunk.parameters()), "lr": cfg.trunk_lr}]
    opt = torch.optim.AdamW(params, weight_decay=1e-4)
    steps = cfg.epochs * ((len(ds) + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[cfg.lr, cfg.trunk_lr], total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(cfg.seed)
    net.eval()  # tile batches are small and frame-correlated: keep the dense statistics
    step = 0
    for epoch in range(cfg.epochs):
        for idx, b in _frames(ds, torch.randperm(len(ds), generator=gen).tolist(), cfg.batch_size):
            masks = training_masks(gains[torch.tensor(idx)], cfg, gen)
            loss = segmentation_loss(region_forward(net, b["rgb"], b["depth"], masks), b["labels"])
            _step(opt, sched, loss)
            step += 1
            _record(log, cfg, {"part": "tiles", "epoch": epoch, "step": step, "seg_ce": float(loss.detach()),
                               "active_share": float(masks.mean())}, t0)
    return step


def _train_gate(net, inputs, gains, price: float, cfg: RegionTrainConfig, log, t0) -> int:
    """The region gate alone: BCE(keep logit, gain > price), cosine learning rate, BatchNorm in training mode."""
    gate = net.region.gate
    opt = torch.optim.Adam(gate.parameters(), lr=cfg.gate_lr)
    n, bs = len(gains), cfg.gate_batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.gate_epochs * ((n + bs - 1) // bs))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    gate.train()
    step = 0
    try:
        for epoch in range(cfg.gate_epochs):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, bs):
                idx = order[start:start + bs]
                keep = (gains[idx] > price).float()
                loss = F.binary_cross_entropy_with_logits(gate.score(inputs[idx]), keep)
                _step(opt, sched, loss)
                step += 1
                _record(log, cfg, {"part": "gate", "epoch": epoch, "step": step, "gate_bce": float(loss.detach()),
                                   "keep_share": float(keep.mean())}, t0)
    finally:
        gate.eval()
    return step


def _step(opt, sched, loss) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()


def _record(log, cfg: RegionTrainConfig, rec, t0) -> None:
    rec["seconds"] = round(time.time() - t0, 1)
    log.append(rec)
    if cfg.progress and rec["step"] % 10 == 0:
        print(json.dumps(rec), flush=True)


def train_region(cfg: RegionTrainConfig) -> Dict[str, object]:
    """Run the stage; writes OUT/final.pt (checkpoint with the region head) and OUT/region_train.json."""
    from dynmm_edge.atomic import write_json
    from dynmm_edge.data.preprocess import PreprocessConfig
    from dynmm_edge.model.checkpoints import load_model, save_checkpoint
    from dynmm_edge.train.data import open_dataset

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, cfg.threads))
    base, meta = load_model(cfg.init_from)
    net = with_region(base, cfg.tile, gate_cues=cfg.gate_cues)
    del base
    pre = PreprocessConfig.from_dict(dict(meta["preprocess"]))
    ds = open_dataset(cfg.data, pre, split="train", num_classes=net.config.num_classes)
    for name, p in net.named_parameters():
        p.requires_grad_(name.startswith("region."))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log, t0 = [], time.time()
    net.eval()
    gains, gate_inputs = training_gains(net, ds, cfg.batch_size)
    price = price_for(gains, cfg)
    steps = _train_tiles(net, ds, gains, cfg, log, t0)
    steps += _train_gate(net, gate_inputs, gains, price, cfg, log, t0)
    net.eval()
    meta = {k: v for k, v in meta.items() if k in ("classes", "palette", "preprocess", "train")}
    meta["train"] = dict(meta.get("train") or {}, region=dict(asdict(cfg), derived_price=price))
    final = save_checkpoint(out / "final.pt", net, meta)
    keep_share = float((gains > price).float().mean())
    write_json(out / "region_train.json", {"config": asdict(cfg), "price": price, "keep_share": keep_share,
                                           "steps": steps, "seconds": round(time.time() - t0, 1), "log": log})
    return {"final": str(final), "steps": steps, "seconds": time.time() - t0, "price": price,
            "keep_share_mean": keep_share}

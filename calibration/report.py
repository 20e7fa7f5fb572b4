"""Accuracy report for a calibrated model: INT8 (the manifest's per-branch precisions) vs FP32.

Three views, all on ONNX Runtime CPU and held-out frames:
  * per-branch SQNR: each quantised branch fed the SAME FP32 inputs, so the number isolates that
    branch's own quantisation error;
  * gate decision agreement: the quantised pipeline's gate decision (INT8 gate, or FP32 gate on
    INT8 upstream branches) vs the FP32 one;
  * mIoU / pixel accuracy against ground truth for every forced path and for the dynamic (gated)
    pipeline, FP32 and quantised side by side.
The JSON is written first; the Markdown is rendered from it. Keys are documented in docs/CALIBRATION.md.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Mapping, Optional

import numpy as np

from dynmm_edge.metrics import confusion_matrix, metrics_from_confusion

from dynmm_edge.errors import DataError

REPORT_SCHEMA = "dynmm-edge/calibration-report"
REPORT_VERSION = 1
MIOU_TOLERANCE_POINTS = 1.0
GATE_AGREEMENT_FLOOR = 0.97


def sqnr_db(signal_energy: float, noise_energy: float) -> float:
    """10*log10(sum ref^2 / sum (ref - q)^2); a bit-exact output is capped at 200 dB (JSON has no inf)."""
    if noise_energy <= 0.0:
        return 200.0
    if signal_energy <= 0.0:
        return -200.0
    return float(min(200.0, 10.0 * np.log10(signal_energy / noise_energy)))


class Confusion:
    """Accumulated confusion matrix over labelled pixels (255 = void is ignored)."""

    def __init__(self, num_classes: int):
        self.n = int(num_classes)
        self.m = np.zeros((self.n, self.n), np.int64)

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        self.m += confusion_matrix(pred, gt, self.n)

    def metrics(self) -> Dict[str, Optional[float]]:
        """In percent (as the report prints them); None when no pixel was labelled."""
        total = int(self.m.sum())
        if total == 0:
            return {"miou": None, "pixel_acc": None, "pixels": 0}
        m = metrics_from_confusion(self.m)
        return {"miou": 100.0 * m["miou"], "pixel_acc": 100.0 * m["pixel_acc"], "pixels": total}


def _labels_at(frame, height: int, width: int) -> Optional[np.ndarray]:
    if getattr(frame, "labels", None) is None:
        return None
    from dynmm_edge.data.preprocess import resize_labels
    return resize_labels(np.asarray(frame.labels), height, width)


def _pred(env: Mapping[str, np.ndarray]) -> np.ndarray:
    if "labels" in env:
        return np.asarray(env["labels"]).reshape(env["labels"].shape[-2:])
    logits = np.asarray(env["logits"])
    return np.argmax(logits[0], axis=0)


def declared_label_classes(source) -> Optional[int]:
    """Class count of a source's labels when the source itself defines it (synthetic:// worlds)."""
    if isinstance(source, str) and source.startswith("synthetic://"):
        from dynmm_edge.data.synthetic import CLASS_NAMES
        return len(CLASS_NAMES)
    return None


def check_label_classes(manifest, frames: Iterable = (), declared: Optional[int] = None, source: str = "") -> None:
    """DataError when the labels cannot belong to this model's classes: a declared class count that
    differs, or a label value (255 = void aside) the model cannot predict. mIoU between mismatched
    label spaces is meaningless, so no report is computed from it."""
    n = len(manifest.classes)
    where = f" ({source})" if source else ""
    if declared is not None and int(declared) != n:
        raise DataError(f"labels{where} have {declared} classes but model {manifest.name} has {n}: mIoU between "
                        "them is meaningless; calibrate with frames labelled for this model, or without labels")
    for f in frames:
        lab = getattr(f, "labels", None)
        if lab is None:
            continue
        lab = np.asarray(lab)
        bad = (lab >= n) & (lab != 255)
        if bad.any():
            raise DataError(f"frame {getattr(f, 'frame_id', '?')}{where}: label value {int(lab[bad].max())} but model "
                            f"{manifest.name} has {n} classes: the labels belong to another class list")


def build_report(manifest, frames: Iterable, precision: Optional[Mapping[str, str]] = None,
                 calibration: Optional[Mapping] = None, eval_source: str = "",
                 progress: Optional[Callable[[str], None]] = None, bar=None,
                 declared_classes: Optional[int] = None) -> Dict:
    """Evaluate the quantised configuration (default: the manifest's precisions) against FP32.

    bar(iterable, total): optional progress bar wrapper. Labels whose class list differs from the
    model's raise DataError (check_label_classes) instead of yielding meaningless verdicts."""
    from dynmm_edge.calibration.feeds import BranchPipeline, frame_inputs, preprocess_config
    t0 = time.perf_counter()
    prec = {b.name: b.precision for b in manifest.branches}
    prec.update(precision or {})
    quantised = [n for n, p in prec.items() if p != "fp32"]
    ref, q = BranchPipeline(manifest), BranchPipeline(manifest, prec)
    cfg = preprocess_config(manifest)
    frames = list(frames)
    _check_eval_inputs(manifest, frames, quantised, declared_classes, eval_source)
    tally = _Tally(manifest.path_values, len(manifest.classes), quantised, len(frames))
    for i, frame in enumerate(bar(frames, len(frames)) if bar else frames):
        gt = _labels_at(frame, manifest.height, manifest.width)
        _evaluate_frame(manifest, ref, q, frame_inputs(frame, cfg), gt, tally)
        if progress and (i + 1 == len(frames) or (i + 1) % max(1, len(frames) // 5) == 0):
            progress(f"evaluated {i + 1}/{len(frames)} held-out frames")
    return _assemble_report(manifest, prec, calibration, eval_source, tally, t0)


def _check_eval_inputs(manifest, frames: list, quantised: list, declared: Optional[int], eval_source: str) -> None:
    """DataError before any inference: no frames, labels of another class list, nothing quantised."""
    if not frames:
        raise DataError(f"no held-out frames to evaluate{' from ' + eval_source if eval_source else ''}")
    check_label_classes(manifest, frames, declared, eval_source)
    if not quantised:
        raise DataError("no branch runs in INT8 in this configuration: nothing to compare with FP32")


class _Tally:
    """Running sums over the held-out frames; the report is computed from these alone."""

    def __init__(self, paths, num_classes: int, quantised: list, frames: int):
        self.paths = list(paths)
        self.num_classes = int(num_classes)
        self.quantised = list(quantised)
        keys = [str(k) for k in self.paths] + ["dynamic"]
        self.conf = {c: {k: Confusion(num_classes) for k in keys} for c in ("fp32", "int8")}
        self.agree_px = {k: [0, 0] for k in keys}  # [same prediction, pixels]
        self.energy: Dict[str, Dict[str, list]] = {n: {} for n in quantised}  # branch -> output -> [signal, noise]
        self.hist = {c: {str(k): 0 for k in self.paths} for c in ("fp32", "int8")}
        self.gate_same = 0
        self.frames = int(frames)
        self.labelled = 0

    def add_branch_error(self, branch: str, output: str, ref: np.ndarray, quant) -> None:
        d = np.asarray(quant, np.float64) - ref
        e = self.energy[branch].setdefault(output, [0.0, 0.0])
        e[0] += float(np.sum(np.square(ref, dtype=np.float64)))
        e[1] += float(np.sum(d * d))

    def add_gate(self, rpath: int, qpath: int) -> None:
        self.gate_same += rpath == qpath
        self.hist["fp32"][str(rpath)] += 1
        self.hist["int8"][str(qpath)] += 1

    def add_prediction(self, key: str, rp: np.ndarray, qp: np.ndarray, gt: Optional[np.ndarray]) -> None:
        self.agree_px[key][0] += int(np.sum(rp == qp))
        self.agree_px[key][1] += rp.size
        if gt is not None:
            self.conf["fp32"][key].add(gt, rp)
            self.conf["int8"][key].add(gt, qp)


def _evaluate_frame(manifest, ref, q, inputs: Mapping[str, np.ndarray], gt: Optional[np.ndarray],
                    tally: _Tally) -> None:
    """One held-out frame: branch errors on FP32 inputs, every forced path and the gated one, both configs."""
    tally.labelled += gt is not None
    rcache: Dict = {}
    qcache: Dict = {}
    captured: Dict[str, Dict[str, np.ndarray]] = {}
    full = manifest.full_path
    renv = {full: ref.run_path(inputs, full, rcache, record=captured.__setitem__)}
    _add_branch_errors(manifest, q, captured, renv[full], tally)
    qenv = {}
    for k in tally.paths:
        if k not in renv:
            renv[k] = ref.run_path(inputs, k, rcache)
        qenv[k] = q.run_path(inputs, k, qcache)
    rpath, qpath = ref.gate_decision(renv[full]), q.gate_decision(qenv[full])
    tally.add_gate(rpath, qpath)
    for key, (rk, qk) in [(str(k), (k, k)) for k in tally.paths] + [("dynamic", (rpath, qpath))]:
        tally.add_prediction(key, _pred(renv[rk]), _pred(qenv[qk]), gt)


def _add_branch_errors(manifest, q, captured: Mapping[str, Dict[str, np.ndarray]],
                       ref_env: Mapping[str, np.ndarray], tally: _Tally) -> None:
    """Per-branch SQNR sums: each quantised branch run on exactly the inputs its FP32 twin saw."""
    for name in tally.quantised:
        if name not in captured:
            continue
        out_q = q.run_branch(name, captured[name])
        for spec in manifest.branch(name).outputs:
            r = np.asarray(ref_env[spec.name])
            if r.dtype.kind == "f":
                tally.add_branch_error(name, spec.name, r, out_q[spec.name])


def _segmentation(tally: _Tally) -> Dict:
    def entry(key):
        a, b = tally.conf["fp32"][key].metrics(), tally.conf["int8"][key].metrics()
        delta = lambda m: (None if a[m] is None or b[m] is None else float(b[m] - a[m]))
        return {"fp32": a, "int8": b, "delta_miou_points": delta("miou"),
                "delta_pixel_acc_points": delta("pixel_acc"),
                "prediction_agreement": float(tally.agree_px[key][0] / max(1, tally.agree_px[key][1]))}

    return {"paths": {str(k): entry(str(k)) for k in tally.paths}, "dynamic": entry("dynamic")}


def _branch_entries(manifest, prec: Mapping[str, str], tally: _Tally) -> Dict:
    branches = {}
    for b in manifest.branches:
        entry = {"kind": b.kind, "precision": prec[b.name]}
        if b.name in tally.energy:
            per = {o: sqnr_db(s, n) for o, (s, n) in tally.energy[b.name].items()}
            entry["sqnr_db"] = per
            entry["sqnr_db_min"] = min(per.values()) if per else None
        branches[b.name] = entry
    return branches


def _summary(seg: Mapping, branches: Mapping, tally: _Tally, full_key: str) -> Dict:
    """Headline numbers and the pass/fail checks, each with what it was computed from."""
    deltas = [e["delta_miou_points"] for e in list(seg["paths"].values()) + [seg["dynamic"]]
              if e["delta_miou_points"] is not None]
    gate_agreement = tally.gate_same / tally.frames
    sq = [e["sqnr_db_min"] for e in branches.values() if e.get("sqnr_db_min") is not None]
    dyn = seg["dynamic"]["delta_miou_points"]
    full = seg["paths"][full_key]["delta_miou_points"]
    return {
        "gate_agreement": float(gate_agreement),
        "dynamic_delta_miou_points": dyn,
        "full_path_delta_miou_points": full,
        "max_abs_delta_miou_points": float(max(abs(d) for d in deltas)) if deltas else None,
        "min_sqnr_db": float(min(sq)) if sq else None,
        "checks": {
            "miou_within_1pt": None if dyn is None else bool(
                abs(dyn) <= MIOU_TOLERANCE_POINTS and abs(full) <= MIOU_TOLERANCE_POINTS),
            "gate_agreement_ge_97pct": bool(gate_agreement >= GATE_AGREEMENT_FLOOR),
        },
        # what each verdict was computed from (None verdicts say why they are missing)
        "checks_basis": {
            "miou_within_1pt": (f"{tally.labelled} labelled held-out frames, {tally.num_classes} classes"
                                if dyn is not None else "no labelled held-out frames"),
            "gate_agreement_ge_97pct": f"{tally.frames} held-out frames",
        },
    }


def _assemble_report(manifest, prec: Mapping[str, str], calibration: Optional[Mapping], eval_source: str,
                     tally: _Tally, t0: float) -> Dict:
    seg = _segmentation(tally)
    branches = _branch_entries(manifest, prec, tally)
    summary = _summary(seg, branches, tally, str(manifest.full_path))
    import onnxruntime
    return {
        "schema": REPORT_SCHEMA, "schema_version": REPORT_VERSION,
        "model": {"name": manifest.name, "folder": str(manifest.folder), "height": manifest.height,
                  "width": manifest.width, "classes": tally.num_classes},
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "backend": "onnxruntime-cpu", "onnxruntime": onnxruntime.__version__},
        "precision": prec,
        "calibration": dict(calibration or {}),
        "eval": {"source": eval_source, "frames": tally.frames, "labelled_frames": tally.labelled,
                 "seconds": float(time.perf_counter() - t0)},
        "branches": branches,
        "gate": {"agreement": summary["gate_agreement"], "frames": tally.frames, "path_histogram": tally.hist},
        "segmentation": seg,
        "summary": summary,
    }


def _f(v, fmt="{:.2f}"):
    return "n/a" if v is None else fmt.format(v)


def render_markdown(report: Mapping) -> str:
    """Markdown tables rendered from the report JSON (never computed separately)."""
    s = report["summary"]
    cal = report.get("calibration", {})
    lines = [f"# INT8 calibration report: {report['model']['name']}", "",
             f"Backend: {report['machine']['backend']} {report['machine']['onnxruntime']} on "
             f"{report['machine']['processor']} ({report['machine']['platform']}).",
             f"Calibration: {cal.get('method', '?')}, {cal.get('frames', '?')} frames from {cal.get('source', '?')}; "
             f"evaluation: {report['eval']['frames']} held-out frames ({report['eval']['labelled_frames']} labelled) "
             f"from {report['eval']['source'] or '?'}.",
             "", "Precision: " + ", ".join(f"{k}={v}" for k, v in report["precision"].items()), "",
             "## Summary", "",
             "| metric | value |", "|---|---|",
             f"| gate decision agreement | {_f(100 * s['gate_agreement'])} % |",
             f"| dynamic mIoU delta (INT8 - FP32) | {_f(s['dynamic_delta_miou_points'])} points |",
             f"| full-path mIoU delta | {_f(s['full_path_delta_miou_points'])} points |",
             f"| max abs mIoU delta (any path) | {_f(s['max_abs_delta_miou_points'])} points |",
             f"| min branch SQNR | {_f(s['min_sqnr_db'], '{:.1f}')} dB |",
             f"| mIoU within 1 point | {s['checks']['miou_within_1pt']} |",
             f"| gate agreement >= 97 % | {s['checks']['gate_agreement_ge_97pct']} |",
             "", "## Branches (SQNR on identical FP32 inputs)", "",
             "| branch | kind | precision | min SQNR dB | per output |", "|---|---|---|---|---|"]
    for name, b in report["branches"].items():
        per = ", ".join(f"{o}: {v:.1f}" for o, v in b.get("sqnr_db", {}).items()) or "-"
        lines.append(f"| {name} | {b['kind']} | {b['precision']} | {_f(b.get('sqnr_db_min'), '{:.1f}')} | {per} |")
    lines += ["", "## Segmentation (held-out frames, vs ground truth)", "",
              "| path | FP32 mIoU | INT8 mIoU | delta | FP32 pix acc | INT8 pix acc | prediction agreement |",
              "|---|---|---|---|---|---|---|"]
    seg = report["segmentation"]
    for key, e in list(seg["paths"].items()) + [("dynamic", seg["dynamic"])]:
        lines.append(f"| {key} | {_f(e['fp32']['miou'])} | {_f(e['int8']['miou'])} | {_f(e['delta_miou_points'])} | "
                     f"{_f(e['fp32']['pixel_acc'])} | {_f(e['int8']['pixel_acc'])} | "
                     f"{_f(100 * e['prediction_agreement'])} % |")
    hist = report["gate"]["path_histogram"]
    lines += ["", "## Gate paths chosen (frames)", "", "| path | FP32 | INT8 |", "|---|---|---|"]
    for k in hist["fp32"]:
        lines.append(f"| {k} | {hist['fp32'][k]} | {hist['int8'][k]} |")
    return "\n".join(lines) + "\n"


def write_report(report: Mapping, json_path) -> tuple:
    """Write OUT.json and OUT.md (same stem) atomically; returns both paths."""
    from dynmm_edge.atomic import write_json, write_text
    json_path = Path(json_path)
    md_path = json_path.with_suffix(".md")
    write_json(json_path, report)
    write_text(md_path, render_markdown(report))
    return json_path, md_path

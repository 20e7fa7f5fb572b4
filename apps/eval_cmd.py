"""`dynmm-edge eval`: mIoU / pixel accuracy / path histogram / depth MACs of a checkpoint, with the
eager torch model and true skipping; optional gate-bias sweep (JSON + PNG).
"""
import argparse
import sys
from pathlib import Path

SPLITS = ("test", "val", "train")  # searched in this order when --split is not given

EPILOG = """examples:
  dynmm-edge eval demo --source 'synthetic://?frames=200&seed=2026' --json eval.json
  dynmm-edge eval runs/demo/final.pt --source data/synth --json eval.json     # test, else val, else train
  dynmm-edge eval ckpt.pth --source data/nyuv2 --split test --sweep=-2,-1,0,1,2 --json sweep.json
"""

from dynmm_edge.apps.argtypes import positive_int


def add_parser(subparsers) -> None:
    from dynmm_edge.apps.common import add_json, add_model, add_source
    p = subparsers.add_parser("eval", help="evaluate a checkpoint (dynamic, rgb_only, full_depth; bias sweep)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=EPILOG)
    add_model(p)
    add_source(p, required=True, help="dataset folder or synthetic://?frames=N&hard_fraction=F&seed=S")
    p.add_argument("--split", default=None,
                   help="split of a dataset folder (default: test, else val, else train with a note)")
    add_json(p, required=True, help="where to write the report (JSON, atomic)")
    p.add_argument("--sweep", default="",
                   help="comma-separated gate biases B, e.g. -2,-1,0,1,2: path = argmax log p + B x depth cost; "
                        "B > 0 = more depth, in nats per unit depth cost (same as run --policy bias:B, bench --bias)")
    p.add_argument("--png", default="", help="plot of mIoU vs depth MACs (default: JSON path with .png)")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--region-policy", default="gate:0.5",
                   help="models with a region gate: policy reported as modes.region (gate:T, share:F, entropy:F)")
    p.add_argument("--threads", type=positive_int, default=2)
    p.set_defaults(func=run)


def find_split(source: str, split=None):
    """The split folder to read: the one asked for, else test / val / train (train with a note), or
    None when `source` is itself a split (has rgb/). DataError names the splits that do exist."""
    from dynmm_edge.errors import DataError
    root = Path(source)
    if str(source).startswith("synthetic://") or not root.is_dir():
        return split  # synthetic worlds have no splits; a missing folder is reported by the reader
    present = [s for s in SPLITS if (root / s).is_dir()]
    others = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "rgb").is_dir() and p.name not in SPLITS)
    if split is not None:
        if not (root / split).is_dir():
            raise DataError(f"{root}: no split {split!r}; splits here: {', '.join(present + others) or 'none'}")
        return split
    if present:
        if present[0] == "train":
            print(f"dynmm-edge eval: note: {root} has no test or val split: evaluating on 'train' "
                  "(frames the model may have been trained on)", file=sys.stderr)
        return present[0]
    if (root / "rgb").is_dir():
        return None
    if others:
        raise DataError(f"{root}: no test, val or train split; splits here: {', '.join(others)} (pass --split)")
    raise DataError(f"{root}: not a dataset folder: no test/, val/, train/ or rgb/ inside")


def parse_biases(text: str):
    from dynmm_edge.runtime.policy import parse_biases as parse

    return list(parse(text, "--sweep"))


def format_summary(report) -> str:
    """Static front, then each mode against it, then mIoU per kind."""
    lines = []
    for p, s in report["static"].items():
        lines.append(f"static path {p}  mIoU {100 * s['miou']:6.2f}  depth cost {s['depth_macs_fraction']:.3f}")
    for name, s in report.get("region_static", {}).items():
        lines.append(f"region {name:5s}  mIoU {100 * s['miou']:6.2f}  depth cost {s['depth_macs_fraction']:.3f}  "
                     f"(fixed: {'every' if name == 'all' else 'no'} tile, on the front too)")
    for mode, m in report["modes"].items():
        if mode in ("rgb_only", "full_depth"):
            continue
        lines.append(f"{mode:8s}      mIoU {100 * m['miou']:6.2f}  depth cost {m['depth_macs_fraction']:.3f}  "
                     f"front there {100 * m['front_miou']:6.2f}  delta {100 * m['front_delta']:+.2f}")
        if "active_tile_share" in m:
            lines.append(f"              active tiles {100 * m['active_tile_share']:.0f}%  [{m['policy']}]")
        if "path_histogram" in m:
            lines.append("              paths " + " ".join(f"{p}:{c}" for p, c in m["path_histogram"].items()))
    for kind, k in report["by_kind"].items():
        region = (f"  region {100 * k['region']['miou']:6.2f} (cost {k['region']['depth_macs_fraction']:.2f})"
                  if "region" in k else "")
        lines.append(f"kind {kind:12s} {k['frames']:4d} frames  dynamic {100 * k['dynamic']['miou']:6.2f} "
                     f"(cost {k['dynamic']['depth_macs_fraction']:.2f})  rgb {100 * k['rgb_only']['miou']:6.2f}  "
                     f"full {100 * k['full_depth']['miou']:6.2f}{region}")
    return "\n".join(lines)


def run(args) -> int:
    import torch

    from dynmm_edge.atomic import write_json
    from dynmm_edge.data.preprocess import PreprocessConfig
    from dynmm_edge.errors import DynMMError
    from dynmm_edge.model.checkpoints import load_model
    from dynmm_edge.train.data import open_dataset
    from dynmm_edge.train.evaluate import evaluate, plot_sweep

    torch.set_num_threads(max(1, args.threads))
    try:
        biases = parse_biases(args.sweep)
        model, meta = load_model(args.model)
        model.eval()
        pre = PreprocessConfig.from_dict(dict(meta["preprocess"]))
        split = find_split(args.source, args.split)
        ds = open_dataset(args.source, pre, split=split, num_classes=model.config.num_classes)
        report = evaluate(model, ds, meta["classes"], batch_size=args.batch_size, biases=biases, progress=True)
        if getattr(model, "region", None) is not None:
            from dynmm_edge.train.region_eval import add_region_report
            report = add_region_report(report, model, ds, meta["classes"], args.batch_size, args.region_policy,
                                       progress=True)
    except (DynMMError, ValueError) as exc:
        print(f"dynmm-edge eval: error: {exc}", file=sys.stderr)
        return 2
    report = {"model": str(args.model), "data": str(args.source), "split": split, **report}
    write_json(args.json, report)
    print(format_summary(report))
    if biases or args.png:
        png = args.png or str(Path(args.json).with_suffix(".png"))
        plot_sweep(report, png)
        print(f"plot: {png}")
    print(f"report: {args.json}")
    return 0

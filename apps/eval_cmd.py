"""`dynmm-edge eval`: mIoU / pixel accuracy / path histogram / depth MACs of a checkpoint, with the
eager torch model and true skipping; optional gate-bias sweep (JSON + PNG).
"""
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint (dynamic, rgb_only, full_depth; bias sweep)",
                              description=__doc__)
    p.add_argument("model", help="checkpoint (ours, ESANet or DynMM) or a preset name")
    p.add_argument("--data", required=True, help="dataset folder or synthetic://?frames=N&hard_fraction=F&seed=S")
    p.add_argument("--split", default="test", help="split of a dataset folder")
    p.add_argument("--json", required=True, help="where to write the report (JSON, atomic)")
    p.add_argument("--sweep", default="",
                   help="comma-separated gate biases B, e.g. -2,-1,0,1,2: path = argmax log p + B x depth cost; "
                        "B > 0 = more depth, in nats per unit depth cost (same as run --policy bias:B, bench --bias)")
    p.add_argument("--png", default="", help="plot of mIoU vs depth MACs (default: JSON path with .png)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=run)


def parse_biases(text: str):
    from dynmm_edge.runtime.policy import parse_biases as parse

    return list(parse(text, "--sweep"))


def format_summary(report) -> str:
    """Static front, then each mode against it, then mIoU per kind."""
    lines = []
    for p, s in report["static"].items():
        lines.append(f"static path {p}  mIoU {100 * s['miou']:6.2f}  depth cost {s['depth_macs_fraction']:.3f}")
    for mode, m in report["modes"].items():
        if mode in ("rgb_only", "full_depth"):
            continue
        lines.append(f"{mode:8s}      mIoU {100 * m['miou']:6.2f}  depth cost {m['depth_macs_fraction']:.3f}  "
                     f"front there {100 * m['front_miou']:6.2f}  delta {100 * m['front_delta']:+.2f}")
        if "path_histogram" in m:
            lines.append("              paths " + " ".join(f"{p}:{c}" for p, c in m["path_histogram"].items()))
    for kind, k in report["by_kind"].items():
        lines.append(f"kind {kind:12s} {k['frames']:4d} frames  dynamic {100 * k['dynamic']['miou']:6.2f} "
                     f"(cost {k['dynamic']['depth_macs_fraction']:.2f})  rgb {100 * k['rgb_only']['miou']:6.2f}  "
                     f"full {100 * k['full_depth']['miou']:6.2f}")
    return "\n".join(lines)


def run(args) -> int:
    import torch
    from pathlib import Path

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
        ds = open_dataset(args.data, pre, split=args.split, num_classes=model.config.num_classes)
        report = evaluate(model, ds, meta["classes"], batch_size=args.batch_size, biases=biases)
    except (DynMMError, ValueError) as exc:
        print(f"dynmm-edge eval: error: {exc}", file=sys.stderr)
        return 2
    report = {"model": str(args.model), "data": str(args.data), **report}
    write_json(args.json, report)
    print(format_summary(report))
    if biases or args.png:
        png = args.png or str(Path(args.json).with_suffix(".png"))
        plot_sweep(report, png)
        print(f"plot: {png}")
    print(f"report: {args.json}")
    return 0

"""`dynmm-edge eval`: mIoU / pixel accuracy / path histogram / depth MACs of a checkpoint, with the
eager torch model and true skipping; optional gate-bias sweep (JSON + PNG).
"""
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint (dynamic, rgb_only, full_depth; bias sweep)",
                              description=__doc__)
    p.add_argument("model", help="checkpoint (ours, ESANet or DynMM) or a preset name")
    p.add_argument("--data", "--source", required=True, help="dataset folder or synthetic://?frames=N&hard_fraction=F&seed=S")
    p.add_argument("--split", default="test", help="split of a dataset folder")
    p.add_argument("--json", required=True, help="where to write the report (JSON, atomic)")
    p.add_argument("--sweep", default="", help="comma-separated gate biases, e.g. -2,-1,0,1,2")
    p.add_argument("--png", default="", help="plot of mIoU vs depth MACs (default: JSON path with .png)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--region-policy", default="gate:0.5",
                   help="models with a region gate: policy reported as modes.region (gate:T, share:F, entropy:F)")
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=run)


def parse_biases(text: str):
    if not text.strip():
        return []
    try:
        return [float(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise ValueError(f"--sweep {text!r}: expected comma-separated numbers such as -2,-1,0,1,2") from None


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
        if getattr(model, "region", None) is not None:
            from dynmm_edge.train.region_eval import add_region_report
            report = add_region_report(report, model, ds, meta["classes"], args.batch_size, args.region_policy)
    except (DynMMError, ValueError) as exc:
        print(f"dynmm-edge eval: error: {exc}", file=sys.stderr)
        return 2
    report = {"model": str(args.model), "data": str(args.data), **report}
    write_json(args.json, report)
    m = report["modes"]
    for mode in ("dynamic", "rgb_only", "full_depth"):
        print(f"{mode:11s} mIoU {100 * m[mode]['miou']:6.2f}  pixel acc {100 * m[mode]['pixel_acc']:6.2f}  "
              f"depth GMACs {m[mode]['depth_macs_mean'] / 1e9:.4f} ({100 * m[mode]['depth_macs_fraction']:.0f}%)")
    if biases or args.png:
        png = args.png or str(Path(args.json).with_suffix(".png"))
        plot_sweep(report, png)
        print(f"plot: {png}")
    if "region" in m:
        r = m["region"]
        print(f"region      mIoU {100 * r['miou']:6.2f}  active tiles {100 * r['active_tile_share']:.0f}%  depth GMACs "
              f"{r['depth_macs_mean'] / 1e9:.4f} ({100 * r['depth_macs_fraction']:.0f}%)  front at that cost "
              f"{100 * r['front_miou_at_cost']:.2f}  [{r['policy']}]")
    print(f"report: {args.json}")
    return 0

"""`dynmm-edge calibrate DIR --data SOURCE`: explicit Q/DQ INT8 branches from real RGB-D frames."""
import argparse
import sys
import time

from dynmm_edge.apps.argtypes import percent, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="INT8 (Q/DQ ONNX) per branch from real frames, with an accuracy report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  dynmm-edge calibrate models/demo --data rec.db3 --frames 200 --method entropy --branches depth\n"
               "  dynmm-edge calibrate models/demo --data data/nyuv2/train --frames 100 --report calib.json\n"
               "  dynmm-edge calibrate models/demo --data 'synthetic://?frames=300' --exclude Resize,trunk_head*")
    p.add_argument("model", help="model folder made by `dynmm-edge export`")
    p.add_argument("--data", required=True, help="calibration frames: .db3 recording, dataset directory, synthetic://...")
    p.add_argument("--frames", type=positive_int, default=64, help="calibration frames to select (default 64)")
    p.add_argument("--method", choices=("minmax", "entropy", "percentile"), default="minmax",
                   help="activation range calibration (default minmax)")
    p.add_argument("--branches", default=None,
                   help="kinds or branch names to quantise, comma separated (default: all), e.g. depth")
    p.add_argument("--exclude", default="",
                   help="node names (glob) or op types to keep in float, comma separated, e.g. Resize,Sigmoid")
    p.add_argument("--precision", default=None,
                   help="per-branch precision after calibration, e.g. gate=fp32,depth=int8 (default: calibrated=int8)")
    p.add_argument("--strategy", choices=("diverse", "first"), default="diverse",
                   help="frame selection: spread over depth ranges and gate paths (default) or the first N")
    p.add_argument("--pool", type=positive_int, default=None, help="frames to scan for selection (default: whole source)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--percentile", type=percent, default=99.999, help="percentile for --method percentile")
    p.add_argument("--report", default=None, help="write the accuracy report to OUT.json (+ OUT.md)")
    p.add_argument("--eval-data", default=None,
                   help="held-out frames for the report (default: frames of --data not used for calibration)")
    p.add_argument("--eval-frames", type=positive_int, default=32, help="held-out frames for the report (default 32)")
    p.set_defaults(func=run)


def run(args) -> int:
    from dynmm_edge.calibration.quantize import QuantizeConfig, calibrate

    t0 = time.perf_counter()

    def say(msg):
        print(f"[calibrate {time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    cfg = QuantizeConfig(method=args.method, exclude=tuple(args.exclude.split(",")) if args.exclude else (),
                         percentile=args.percentile)
    res = calibrate(args.model, args.data, frames=args.frames, branches=args.branches, precision=args.precision,
                    strategy=args.strategy, seed=args.seed, pool=args.pool, progress=say, config=cfg)
    print(f"calibrated {len(res.branches)} branch(es) of {res.manifest.folder} with {cfg.method} "
          f"on {res.info['frames']} frames in {res.seconds:.1f}s")
    print(f"{'branch':<10} {'Q/DQ nodes':>10} {'excluded':>9}  file")
    for b in res.branches:
        print(f"{b.branch:<10} {b.qdq_nodes:>10} {len(b.excluded_nodes):>9}  {b.file}")
    print("precision: " + ",".join(f"{k}={v}" for k, v in res.precision.items()))
    if args.report:
        from dynmm_edge.calibration.frames import held_out_frames
        from dynmm_edge.calibration.report import build_report, write_report
        if args.eval_data:
            frames = held_out_frames(args.eval_data, args.eval_frames)
            source = args.eval_data
        else:
            frames = held_out_frames(args.data, args.eval_frames, exclude=res.info["selected_indices"])
            source = f"{args.data} (frames not used for calibration)"
        say(f"evaluating on {len(frames)} held-out frames")
        info = {k: v for k, v in res.info.items() if k != "selected_indices"}
        report = build_report(res.manifest, frames, calibration=info, eval_source=source, progress=say)
        jpath, mpath = write_report(report, args.report)
        s = report["summary"]
        print(f"report: {jpath} and {mpath}")
        print(f"gate agreement {100 * s['gate_agreement']:.1f} %, dynamic mIoU delta "
              f"{s['dynamic_delta_miou_points'] if s['dynamic_delta_miou_points'] is not None else float('nan'):+.2f} "
              f"points, min SQNR {s['min_sqnr_db']:.1f} dB")
    return 0

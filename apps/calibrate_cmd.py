"""`dynmm-edge calibrate MODEL --source FRAMES`: explicit Q/DQ INT8 branches from real RGB-D frames.

INT8 files are added to the model folder as variants; the folder's default precision does not
change unless --set-default (INT8 is not faster everywhere: on ONNX Runtime CPU it is not).
"""
import argparse
import sys
import time

from dynmm_edge.apps.argtypes import percent, positive_int

EPILOG = """examples:
  dynmm-edge calibrate models/r34 --source walk.db3 --frames 256 --branches depth --json calib.json
  dynmm-edge calibrate demo --source 'synthetic://?frames=120' --frames 32 --branches depth --json calib.json
  dynmm-edge calibrate ckpt.pth --source data/nyuv2/train --frames 100 --set-default
  dynmm-edge run models/r34 --precision depth=int8 --source walk.db3      # use the INT8 variants
MODEL is a model folder, checkpoint, preset or 'demo' ('demo' is calibrated in a working copy in the
cache; -o DIR writes a calibrated copy anywhere).
"""


def add_parser(sub) -> None:
    from dynmm_edge.apps.common import add_json, add_model, add_output, add_source, deprecated_alias
    p = sub.add_parser(
        "calibrate", help="INT8 (Q/DQ ONNX) per branch from real frames, with an accuracy report",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__, epilog=EPILOG)
    add_model(p)
    add_source(p, required=True, help="calibration frames: .db3 recording, dataset directory, synthetic://...")
    add_output(p, help="write the calibrated model into a copy of MODEL here (default: in place)", old=())
    p.add_argument("--frames", type=positive_int, default=64, help="calibration frames to select (default 64)")
    p.add_argument("--method", choices=("minmax", "entropy", "percentile"), default="minmax",
                   help="activation range calibration (default minmax)")
    p.add_argument("--branches", default=None,
                   help="kinds or branch names to quantise, comma separated (default: all), e.g. depth")
    p.add_argument("--exclude", default="",
                   help="node names (glob) or op types to keep in float, comma separated, e.g. Resize,Sigmoid")
    p.add_argument("--set-default", action="store_true",
                   help="make INT8 the default precision of the calibrated branches (default: add variants only)")
    p.add_argument("--precision", default=None,
                   help="set the folder's default precision explicitly afterwards, e.g. gate=fp32,depth=int8")
    p.add_argument("--strategy", choices=("diverse", "first"), default="diverse",
                   help="frame selection: spread over depth ranges and gate paths (default) or the first N")
    p.add_argument("--pool", type=positive_int, default=None, help="frames to scan for selection (default: whole source)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--percentile", type=percent, default=99.999, help="percentile for --method percentile")
    add_json(p, help="write the accuracy report (INT8 vs FP32) to OUT.json (+ OUT.md)", old=("--report",))
    p.add_argument("--eval-source", default=None,
                   help="held-out frames for the report (default: frames of --source not used for calibration)")
    deprecated_alias(p, "--eval-data", "--eval-source", "eval_source")
    p.add_argument("--eval-frames", type=positive_int, default=32, help="held-out frames for the report (default 32)")
    p.add_argument("--label-classes", type=positive_int, default=None,
                   help="classes of the source's labels, checked against the model (default: known for "
                        "synthetic://, else the largest label seen)")
    p.set_defaults(func=run)


def run(args) -> int:
    from dynmm_edge.apps.common import writable_model
    from dynmm_edge.calibration.quantize import QuantizeConfig, calibrate
    from dynmm_edge.calibration.report import check_label_classes, declared_label_classes
    from dynmm_edge.io.progress import bar
    from dynmm_edge.manifest import load_manifest

    t0 = time.perf_counter()

    def say(msg):
        print(f"[calibrate {time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    folder = writable_model(args.model, args.output, progress=say)
    m = load_manifest(folder)
    declared = args.label_classes or declared_label_classes(args.source)
    check_label_classes(m, declared=declared, source=args.source)  # before any work
    cfg = QuantizeConfig(method=args.method, exclude=tuple(args.exclude.split(",")) if args.exclude else (),
                         percentile=args.percentile)
    res = calibrate(folder, args.source, frames=args.frames, branches=args.branches, precision=args.precision,
                    strategy=args.strategy, seed=args.seed, pool=args.pool, progress=say, config=cfg,
                    set_default=args.set_default)
    print(f"calibrated {len(res.branches)} branch(es) of {res.manifest.folder} with {cfg.method} "
          f"on {res.info['frames']} frames in {res.seconds:.1f}s")
    print(f"{'branch':<10} {'Q/DQ nodes':>10} {'excluded':>9}  file")
    for b in res.branches:
        print(f"{b.branch:<10} {b.qdq_nodes:>10} {len(b.excluded_nodes):>9}  {b.file}")
    print("default precision now: " + ",".join(f"{k}={v}" for k, v in res.precision.items())
          + ("" if args.set_default or args.precision else "   (unchanged; --set-default or --precision "
                                                          "depth=int8 at run time to use INT8)"))
    if args.json:
        _report(args, res, say, bar)
    return 0


def _report(args, res, say, bar) -> None:
    from dynmm_edge.calibration.frames import held_out_frames
    from dynmm_edge.calibration.report import build_report, declared_label_classes, write_report
    if args.eval_source:
        frames = held_out_frames(args.eval_source, args.eval_frames)
        source = args.eval_source
    else:
        frames = held_out_frames(args.source, args.eval_frames, exclude=res.info["selected_indices"])
        source = f"{args.source} (frames not used for calibration)"
    say(f"evaluating on {len(frames)} held-out frames")
    info = {k: v for k, v in res.info.items() if k != "selected_indices"}
    # the configuration asked for: the new default when one was set, else every calibrated branch in INT8
    precision = None if (args.set_default or args.precision) else {b.branch: "int8" for b in res.branches}
    report = build_report(res.manifest, frames, precision=precision, calibration=info, eval_source=source,
                          progress=say, bar=lambda it, n: bar(it, n, "held-out frames"),
                          declared_classes=args.label_classes or declared_label_classes(args.eval_source or args.source))
    jpath, mpath = write_report(report, args.json)
    s = report["summary"]
    nan = float("nan")
    print(f"report: {jpath} and {mpath}")
    print(f"gate agreement {100 * s['gate_agreement']:.1f} %, dynamic mIoU delta "
          f"{s['dynamic_delta_miou_points'] if s['dynamic_delta_miou_points'] is not None else nan:+.2f} "
          f"points, min SQNR {s['min_sqnr_db'] if s['min_sqnr_db'] is not None else nan:.1f} dB")
    for name, ok in s["checks"].items():
        print(f"  {name}: {'n/a (' + s['checks_basis'].get(name, 'no valid comparison') + ')' if ok is None else ok}")

"""`dynmm-edge bench`: static full-depth vs RGB-only vs dynamic, interleaved in one run, JSON first."""
import argparse
import sys

from dynmm_edge.apps.argtypes import non_negative_int, positive_float, positive_int

DEFAULT_SOURCE = "synthetic://?frames=200&hard_fraction=0.3&seed=99"
EPILOG = """examples:
  dynmm-edge bench demo --source synthetic://?frames=200 --json bench.json
  dynmm-edge bench models/r34 --backend trt --precision gate=fp16,depth=int8,trunk=fp16 --fps 30 --power auto \\
      --source walk.db3 --frames 600 --json orin_trt.json
  dynmm-edge bench --compare before.json after.json
The JSON keys are documented in docs/BENCH_JSON.md; a .md table and .png plots are written beside it.
"""


def add_parser(sub) -> None:
    from dynmm_edge.apps.run_cmd import add_common_runtime_args
    p = sub.add_parser("bench", help="measure latency (and energy) of static vs dynamic execution",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    from dynmm_edge.apps.common import add_json, add_model, add_source
    add_model(p, nargs="?")
    add_source(p, default=None, old=(), help=f"frames to measure on, preloaded into memory first (default {DEFAULT_SOURCE})")
    p.add_argument("--frames", type=positive_int, default=None, help="number of frames (default: all the source has)")
    p.add_argument("--warmup", type=non_negative_int, default=5, help="warm-up frames per mode")
    p.add_argument("--block", type=positive_int, default=10, help="frames per interleaved block")
    p.add_argument("--bias", default="", help="extra dynamic modes with these biases B, e.g. -2,-1,1: policy bias:B, B > 0 = more depth, "
                        "in nats per unit depth cost (same as run --policy bias:B and eval --sweep)")
    p.add_argument("--fps", type=positive_float, default=None, help="pace frames like a camera (energy includes idle gaps)")
    p.add_argument("--power", default="auto", help="power meter: auto | none | ina3221 | tegrastats | nvml | rapl")
    add_json(p, help="write the report here (+ .md and .png beside)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--region-frames", type=int, default=8,
                   help="models with a region gate: frames for the region break-even curve (0 = skip)")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="print the change between two reports")
    add_common_runtime_args(p)
    p.set_defaults(func=run)


def source_record(source: str, frames: int, defaulted: bool, argv=None) -> dict:
    """What the numbers were measured on: source URI, its seed, frames used, and the command line."""
    import shlex
    from urllib.parse import parse_qs, urlsplit
    seed = None
    if source.startswith("synthetic://"):
        seed = int(parse_qs(urlsplit(source).query).get("seed", ["0"])[0])
    return {"source": source, "source_defaulted": defaulted, "seed": seed, "frames": frames,
            "command": "dynmm-edge " + " ".join(shlex.quote(str(a)) for a in (sys.argv[1:] if argv is None else argv))}


def run(args) -> int:
    from dynmm_edge.bench.report import compare, load_report, to_markdown, write_report
    if args.compare:
        print(compare(load_report(args.compare[0]), load_report(args.compare[1])))
        return 0
    if not args.model:
        print("dynmm-edge bench: give a MODEL (or --compare A.json B.json)", file=sys.stderr)
        return 2
    from dynmm_edge.apps.run_cmd import backend_options
    from dynmm_edge.bench.run import mode_policies, run_bench
    from dynmm_edge.io.sources import open_source
    from dynmm_edge.power.discover import discover
    from dynmm_edge.models import open_session

    from dynmm_edge.runtime.policy import parse_biases

    biases = parse_biases(args.bias, "--bias")
    source = args.source
    if source is None:
        source = DEFAULT_SOURCE
        print(f"no --source given: measuring on the synthetic source {source}")
    # open the model first: a bad model name should fail before frames are loaded
    session = open_session(args.model, backend=args.backend, precision=args.precision,
                           backend_opts=backend_options(args))
    with open_source(source) as src:
        frames = []
        for f in src:
            frames.append(f)
            if args.frames and len(frames) >= args.frames:
                break
    if not frames:
        print(f"dynmm-edge bench: source {source} delivered no frames", file=sys.stderr)
        return 1
    meter = discover(args.power)
    print(f"benchmarking on {len(frames)} frames; power meter: {meter.describe()['kind'] if meter else 'none'}")
    try:
        with session:
            report = run_bench(session, frames, modes=mode_policies(biases), warmup=args.warmup, block=args.block,
                               fps=args.fps, meter=meter,
                               progress=lambda i, n: print(f"\r  {i}/{n} frames per mode", end="", flush=True))
            print()
            from dynmm_edge.manifest import region_spec
            if args.region_frames > 0 and region_spec(session.manifest) is not None:
                from dynmm_edge.bench.region import region_curve
                print("region break-even curve (active share 10 %..100 %, interleaved)")
                report["region"] = region_curve(session, frames[:args.region_frames])
    finally:
        if meter:
            meter.close()
    report["input"] = source_record(source, len(frames), args.source is None, getattr(args, "argv", None))
    if args.json:
        paths = write_report(report, args.json, plot_png=not args.no_plot)
        print("wrote " + ", ".join(str(p) for p in paths.values() if p))
    print(to_markdown(report))
    return 0

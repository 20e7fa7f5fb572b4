"""Region break-even curves on ONNX Runtime CPU (1 thread), written as JSON first.

  python scripts/bench_regions.py --model demo --json docs/results/region_bench.json [--r34]

--r34 adds the esanet-r34-nbt1d-nyuv2 preset at 480x640 with 32-px tiles (the 15x20 grid at 1/32 admits only 32 or 160 px) and RANDOM weights (marked
untrained: timing only). The machine is recorded in the JSON (bench.env).
"""
import argparse
import sys
import tempfile
from pathlib import Path


def curve_for(model, frames, shares, repeats, threads, clock="wall"):
    from dynmm_edge.bench.region import region_curve
    from dynmm_edge.models import open_session

    with open_session(model, backend="ort", backend_opts={"threads": threads}, policy="region-share:0.3") as s:
        return region_curve(s, frames, shares=shares, repeats=repeats, clock=clock)


def r34_folder(tmp: Path) -> Path:
    import torch
    from dynmm_edge.export.exporter import export_model
    from dynmm_edge.model.checkpoints import default_meta
    from dynmm_edge.model.net import DynMMNet
    from dynmm_edge.model.presets import get_preset

    torch.manual_seed(0)
    net = DynMMNet(get_preset("esanet-r34-nbt1d-nyuv2").replace(region_tile=32)).eval()
    export_model((net, default_meta("esanet-r34-nbt1d-nyuv2")), tmp / "r34_region")
    return tmp / "r34_region"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="demo")
    p.add_argument("--json", required=True)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--r34", action="store_true")
    p.add_argument("--r34-frames", type=int, default=2)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: process CPU time per frame (1 thread), for an oversubscribed shared machine")
    p.add_argument("--no-demo", action="store_true", help="only the R34 curve")
    args = p.parse_args(argv)

    from dynmm_edge.atomic import write_json
    from dynmm_edge.bench.env import environment
    from dynmm_edge.bench.region import DEFAULT_SHARES, curve_lines
    from dynmm_edge.io.sources import open_source

    def frames(n, w, h):
        with open_source(f"synthetic://?frames={n}&hard_fraction=0.3&seed=99&width={w}&height={h}") as src:
            return list(src)

    report = {"backend": "ort", "precision": "fp32", "threads": args.threads, "clock": args.clock,
              "env": environment()}
    if not args.no_demo:
        report["demo"] = dict(curve_for(args.model, frames(args.frames, 256, 192), DEFAULT_SHARES, args.repeats,
                                        args.threads, args.clock), model=str(args.model), input="256x192")
    if args.r34:
        with tempfile.TemporaryDirectory() as tmp:
            folder = r34_folder(Path(tmp))
            report["r34_480x640"] = dict(curve_for(folder, frames(args.r34_frames, 640, 480), DEFAULT_SHARES,
                                                   max(1, args.repeats - 1), args.threads, args.clock),
                                         model="esanet-r34-nbt1d-nyuv2 + 32-px region tiles", input="640x480",
                                         weights="random (untrained): timing only")
    write_json(args.json, report)
    for key in ("demo", "r34_480x640"):
        if key in report:
            r = report[key]
            print(f"{key}: full {r['ms_p50']['full']:.1f} ms, rgb-only {r['ms_p50']['rgb']:.1f} ms, "
                  f"break-even share {r['break_even_share']}")
            print("\n".join(curve_lines(r["curve"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())

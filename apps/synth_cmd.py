"""`dynmm-edge synth`: write synthetic RGB-D data as a NYUv2-layout folder, a RealSense .db3 recording
or a rosbag2 bag shaped like realsense-ros output (MCAP or SQLite3)."""
from __future__ import annotations

import argparse
import sys
import time

from dynmm_edge.apps.argtypes import positive_int, unit_float

EPILOG = """examples:
  dynmm-edge synth -o data/synth --frames 500 --size 320x240
  dynmm-edge synth --format db3 -o walk.db3 --frames 300
  dynmm-edge synth --format rosbag2 -o walk_bag --frames 60 --size 256x192 [--storage sqlite3]
  dynmm-edge synth -o data/synth --frames 200 --split test --seed 1     # a held-out split
  dynmm-edge eval demo --source data/synth --json eval.json            # eval finds test, else val, else train
  dynmm-edge synth --kinds                                             # show the kind mix
  dynmm-edge synth -o data/synth --frames 200 --kinds easy=0.5,glass=0.5
  dynmm-edge synth --format db3 -o rec.db3 --frames 60 --world 1       # the original world
"""


def _size(text: str):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, e.g. 320x240, got {text!r}")
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"size must be at least 8x8, got {text!r}")
    return w, h


def add_parser(subparsers) -> None:
    from dynmm_edge.apps.common import add_output
    p = subparsers.add_parser("synth", help="generate synthetic RGB-D frames (folder, .db3 recording or rosbag2)",
                              description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    # required unless --kinds alone shows the mix (checked in run)
    add_output(p, help="output folder (--format dir), file.db3 (--format db3) or new bag folder (--format rosbag2)")
    p.add_argument("--frames", type=positive_int, default=100, help="number of frames (default 100)")
    p.add_argument("--size", type=_size, default=(320, 240), metavar="WxH", help="frame size WxH (default 320x240)")
    p.add_argument("--hard-fraction", type=unit_float, default=0.3, help="share of camouflaged + dark frames")
    p.add_argument("--format", choices=("dir", "db3", "rosbag2"), default="dir",
                   help="rosbag2: /camera/camera/color/image_raw (rgb8), .../aligned_depth_to_color/image_raw "
                        "(16UC1 mm) and camera_info, as realsense-ros 4.x publishes them")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage (default mcap)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=("train", "val", "test"), default="train",
                   help="split folder for --format dir (default train; `eval` reads test, else val, else train)")
    p.add_argument("--motion", choices=("walk", "still"), default=None,
                   help="video: one scene with a moving / still camera (default: independent frames "
                        "for dir, walk for db3 and rosbag2)")
    p.add_argument("--fps", type=positive_int, default=30, help="frame rate of a db3 recording or rosbag2 bag")
    p.add_argument("--world", type=int, choices=(1, 2), default=2,
                   help="2 (default): with depth failures and RGB-rich frames; 1: the original world, same frames per seed")
    p.add_argument("--kinds", nargs="?", const="show", default="",
                   help="without a value: print the kind mix and exit; KIND=W,...: weights of the not-hard kinds "
                        "(easy, rich, sunlit, glass, black, far, motion), e.g. --kinds easy=1,sunlit=1")
    p.set_defaults(func=run)


def _progress(it, total, desc):
    from dynmm_edge.io.progress import bar
    return bar(it, total, desc)


def format_kind_mix(cfg) -> str:
    """One line per kind: expected share at this hard fraction, and what it stands for."""
    from dynmm_edge.data.synthetic import KIND_CAUSES

    lines = [f"world {cfg.world}, hard fraction {cfg.hard_fraction:g}:"]
    for kind, share in sorted(cfg.kind_fractions().items(), key=lambda kv: -kv[1]):
        lines.append(f"  {kind:12s} {100 * share:5.1f} %  {KIND_CAUSES[kind]}")
    return "\n".join(lines)


def run(args) -> int:
    from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld
    from dynmm_edge.errors import DynMMError

    from dynmm_edge.data.synthetic import DEFAULT_KIND_MIX, parse_kind_mix

    w, h = args.size
    show = args.kinds == "show"
    try:
        mix = parse_kind_mix(args.kinds) if args.kinds and not show else DEFAULT_KIND_MIX
        cfg = SynthConfig(width=w, height=h, hard_fraction=args.hard_fraction, seed=args.seed, world=args.world,
                          kind_mix=mix)
    except ValueError as exc:
        print(f"dynmm-edge synth: error: --kinds/--hard-fraction: {exc}", file=sys.stderr)
        return 2
    if show:
        print(format_kind_mix(cfg))
        return 0
    if not args.output:
        print("dynmm-edge synth: error: the following arguments are required: -o/--output "
              "(or --kinds alone to show the mix)", file=sys.stderr)
        return 2
    world = SyntheticWorld(cfg)
    motion = args.motion or ("walk" if args.format in ("db3", "rosbag2") else None)
    if motion is None:
        src = (world.frame(i) for i in range(args.frames))
    else:
        src = iter(world.sequence(args.frames, start=0, motion=motion, fps=float(args.fps)))
    counts = {}

    def counted():
        for f in _progress(src, args.frames, "synth"):
            counts[f.kind] = counts.get(f.kind, 0) + 1
            yield f

    t0 = time.perf_counter()
    try:
        if args.format == "dir":
            from dynmm_edge.data.datasets import write_nyuv2_layout
            n = write_nyuv2_layout(args.output, args.split, counted())
            where = f"{args.output}/{args.split}"
        elif args.format == "rosbag2":
            from dynmm_edge.io.rosbag2 import write_camera_bag
            n = write_camera_bag(args.output, counted(), fps=float(args.fps), storage=args.storage)
            where = f"{args.output} ({args.storage})"
        else:
            from dynmm_edge.data.recording import write_recording
            if not str(args.output).endswith(".db3"):
                print(f"dynmm-edge synth: error: --format db3 needs an output file ending in .db3, got {args.output}", file=sys.stderr)
                return 2
            n = write_recording(args.output, counted(), fps=args.fps)
            where = args.output
    except DynMMError as exc:
        print(f"dynmm-edge synth: error: {exc}", file=sys.stderr)
        return 1
    dt = time.perf_counter() - t0
    mix = ", ".join(f"{k} {c}" for k, c in sorted(counts.items()))
    print(f"wrote {n} frames {w}x{h} ({mix}) to {where} in {dt:.1f} s ({n / max(dt, 1e-9):.1f} frames/s)")
    return 0

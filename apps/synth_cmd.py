"""`dynmm-edge synth`: write synthetic RGB-D data as a NYUv2-layout folder or a RealSense .db3 recording."""
from __future__ import annotations

import argparse
import sys
import time


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
    p = subparsers.add_parser("synth", help="generate synthetic RGB-D frames (folder or .db3 recording)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="examples:\n"
                                     "  dynmm-edge synth -o data/synth --frames 2000 --size 320x240 --hard-fraction 0.3\n"
                                     "  dynmm-edge synth -o data/synth --frames 200 --split test --seed 1   # held out\n"
                                     "  dynmm-edge synth -o walk.db3 --format db3 --frames 300\n"
                                     "  dynmm-edge eval demo --source data/synth --json eval.json   # finds the split")
    add_output(p, required=True, help="output folder (--format dir) or file.db3 (--format db3)")
    p.add_argument("--frames", type=int, default=100, help="number of frames (default 100)")
    p.add_argument("--size", type=_size, default=(320, 240), metavar="WxH", help="frame size WxH (default 320x240)")
    p.add_argument("--hard-fraction", type=float, default=0.3, help="share of camouflaged + dark frames")
    p.add_argument("--format", choices=("dir", "db3"), default="dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=("train", "val", "test"), default="train",
                   help="split folder for --format dir (default train; `eval` reads test, else val, else train)")
    p.add_argument("--motion", choices=("walk", "still"), default=None,
                   help="video: one scene with a moving / still camera (default: independent frames "
                        "for dir, walk for db3)")
    p.add_argument("--fps", type=int, default=30, help="frame rate of a db3 recording")
    p.set_defaults(func=run)


def _progress(it, total, desc):
    try:
        from tqdm import tqdm
        return tqdm(it, total=total, desc=desc, unit="frame", file=sys.stderr)
    except ImportError:
        return it


def run(args) -> int:
    from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld
    from dynmm_edge.errors import DynMMError

    if args.frames < 1:
        print("dynmm-edge synth: error: --frames must be >= 1", file=sys.stderr)
        return 2
    w, h = args.size
    try:
        cfg = SynthConfig(width=w, height=h, hard_fraction=args.hard_fraction, seed=args.seed)
    except ValueError as exc:
        print(f"dynmm-edge synth: error: {exc}", file=sys.stderr)
        return 2
    world = SyntheticWorld(cfg)
    motion = args.motion or ("walk" if args.format == "db3" else None)
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
    mix = ", ".join(f"{k} {counts.get(k, 0)}" for k in ("easy", "camouflaged", "dark"))
    print(f"wrote {n} frames {w}x{h} ({mix}) to {where} in {dt:.1f} s ({n / max(dt, 1e-9):.1f} frames/s)")
    return 0

"""`dynmm-edge demo`: the product in one command, no camera and no GPU needed.

Makes a sample RealSense recording from the synthetic world (through the real recorder, so it
travels the same pyrealsense2 playback path as a camera file), runs the shipped demo model on it
with ONNX Runtime, writes the overlay video and per-frame stats, and prints a summary.
"""
import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the shipped demo model on a synthetic RealSense recording (no camera, no GPU)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  dynmm-edge demo                  # writes ./dynmm_demo_out/\n"
                              "  dynmm-edge demo models/r34 --frames 300 -o demo_out --policy bias:1\n"
                              "Output folder (default ./dynmm_demo_out): demo_overlay.mp4, demo_stats.jsonl, "
                              "demo_summary.json and the sample recording.")
    from dynmm_edge.apps.common import add_model, add_output, deprecated_alias
    add_model(p, nargs="?", default=argparse.SUPPRESS, help_extra=" (default: the shipped demo model)")
    deprecated_alias(p, "--model", "the positional MODEL", "model")
    add_output(p, default="dynmm_demo_out", help="output folder (video, stats, summary; default ./dynmm_demo_out)")
    p.add_argument("--frames", type=int, default=90, help="frames in the sample recording")
    p.add_argument("--hard-fraction", type=float, default=0.3, help="share of camouflaged/dark frames")
    p.add_argument("--seed", type=int, default=2026, help="seed of the sample recording (held out from training)")
    p.add_argument("--policy", default=None, help="gate policy (see `dynmm-edge run -h`)")
    p.add_argument("--backend", default="ort", choices=["ort", "torch", "trt"])
    p.add_argument("--precision", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--source", default=None, help="use this source instead of making a recording")
    p.set_defaults(func=run)


def make_sample_recording(path: Path, frames: int, hard_fraction: float, seed: int) -> Path:
    """Synthetic walk-through -> .db3 via pyrealsense2's software device + recorder (labels in a sidecar)."""
    from dynmm_edge.data.recording import write_recording
    from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld
    world = SyntheticWorld(SynthConfig(width=320, height=240, hard_fraction=hard_fraction, seed=seed))
    write_recording(path, (f.to_frame() for f in world.sequence(frames, motion="walk")), fps=30)
    return path


def run(args) -> int:
    from dynmm_edge.apps.run_cmd import print_summary, run_model
    from dynmm_edge.atomic import write_json
    args.model = getattr(args, "model", None) or "demo"
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    source = args.source
    if source is None:
        source = out / f"sample_{args.frames}f_seed{args.seed}.db3"
        if not source.is_file():
            print(f"recording {args.frames} synthetic frames through the RealSense recorder -> {source}")
            make_sample_recording(source, args.frames, args.hard_fraction, args.seed)
    video, stats = out / "demo_overlay.mp4", out / "demo_stats.jsonl"
    print(f"running model '{args.model}' on {source} with backend {args.backend}")
    summary = run_model(args, str(source), [str(video), f"jsonl://{stats}"])
    write_json(out / "demo_summary.json", summary)
    print_summary(summary)
    print(f"wrote {video}, {stats} and {out / 'demo_summary.json'}")
    if summary.get("error"):
        print(f"dynmm-edge demo: error: {summary['error']}", file=sys.stderr)
    return summary["exit_code"]

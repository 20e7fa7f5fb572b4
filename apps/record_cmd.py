"""`dynmm-edge record`: any source (camera, folder, synthetic world, recording) -> a .db3 recording.

Frames go through dynmm_edge.data.recording.write_recording (software device + rs.recorder) for
every source, a live RealSense included, so the file always has the same layout (frame numbers
1..N, depth_units, identity depth->colour extrinsics after alignment) and labels land in the
sidecar. Ctrl-C ends the recording cleanly: the frames so far are written and the file finalised.
"""
import argparse
import signal
import sys
import time

from dynmm_edge.apps.argtypes import non_negative_int, positive_float, positive_int


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("record", help="record a source (RealSense, folder, synthetic://) to a .db3 file",
                              description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="examples:\n"
                                     "  dynmm-edge record --source realsense:// -o walk.db3 --seconds 30\n"
                                     "  dynmm-edge record --source 'synthetic://?frames=60' -o synth.db3\n"
                                     "  dynmm-edge record --source data/nyuv2/test -o nyu_test.db3 --frames 100")
    p.add_argument("--source", required=True, help="source URI, e.g. realsense://, synthetic://?frames=100, DIR")
    p.add_argument("-o", "--output", required=True, help="output recording (.db3)")
    stop = p.add_mutually_exclusive_group()
    stop.add_argument("--seconds", type=positive_float, default=None, help="stop after this many seconds")
    stop.add_argument("--frames", type=positive_int, default=None, help="stop after this many frames")
    p.add_argument("--fps", type=non_negative_int, default=0, help="frame rate stored in the file (default: the source's, else 30)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


class _Limiter:
    """Wraps the source iterator: counts, prints progress, stops on limits or on SIGINT."""

    def __init__(self, source, frames, seconds, quiet, out=None):
        self.source, self.max_frames, self.seconds, self.quiet = source, frames, seconds, quiet
        self.out = out if out is not None else sys.stderr  # looked up per use, not bound at import
        self.count = 0
        self.interrupted = False
        self.signum = None
        self.printed = False
        self.t0 = None

    def __iter__(self):
        self.t0 = time.perf_counter()
        last = self.t0
        for frame in self.source:
            yield frame
            self.count += 1
            now = time.perf_counter()
            if not self.quiet and (now - last >= 1.0 or self.count == self.max_frames):
                print(f"\rrecorded {self.count} frames  {now - self.t0:6.1f} s  "
                      f"{self.count / max(now - self.t0, 1e-9):5.1f} fps", end="", file=self.out, flush=True)
                last = now
                self.printed = True
            if self.interrupted:
                break
            if self.max_frames is not None and self.count >= self.max_frames:
                break
            if self.seconds is not None and now - self.t0 >= self.seconds:
                break

    def on_signal(self, signum, frame):
        """SIGINT / SIGTERM / SIGHUP: finish the frame in hand, finalise the file, exit 128 + signal."""
        self.interrupted = True
        self.signum = signum


def run(args) -> int:
    from pathlib import Path

    from dynmm_edge.data.recording import write_recording
    from dynmm_edge.errors import DynMMError
    from dynmm_edge.io.sources import open_source
    from dynmm_edge.signals import stop_signals

    out = Path(args.output)
    if out.suffix != ".db3":
        print(f"dynmm-edge record: error: {out}: output must end in .db3 (librealsense >= 2.58 records .db3 only)", file=sys.stderr)
        return 2
    limiter = None
    try:
        with open_source(args.source) as source:
            if source.live and args.frames is None and args.seconds is None:
                print("recording until Ctrl-C", file=sys.stderr)
            fps = args.fps or int(round(getattr(source, "fps", 0) or 30))
            limiter = _Limiter(source, args.frames, args.seconds, args.quiet)
            with stop_signals(limiter.on_signal):
                n = write_recording(out, limiter, fps=fps)
    except DynMMError as exc:
        if limiter is not None and limiter.printed:
            print(file=sys.stderr)
        print(f"dynmm-edge record: error: {exc}", file=sys.stderr)
        return 1
    if limiter.printed:
        print(file=sys.stderr)
    name = "Ctrl-C" if limiter.signum == signal.SIGINT else signal.Signals(limiter.signum).name if limiter.signum else ""
    note = f" (stopped by {name})" if limiter.interrupted else ""
    print(f"wrote {n} frames to {out}{note}")
    return 128 + int(limiter.signum) if limiter.interrupted else 0

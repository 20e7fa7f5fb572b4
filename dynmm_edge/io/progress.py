"""Progress for long work: a Sink that reports a run as it goes, and tqdm bars for batch jobs.

A 10-minute run that prints nothing looks like a hang. ProgressSink shows frames, FPS, the share
of depth-encoder compute that ran, and an ETA when the source is finite: one line rewritten in
place on a terminal, or one plain line every `every_s` seconds otherwise (logs, CI).
"""
import sys
import time
from typing import Callable, Iterable, Optional, TextIO

from dynmm_edge.io.sinks import Sink
from dynmm_edge.types import Result


def _fmt_eta(seconds: float) -> str:
    seconds = int(round(max(seconds, 0.0)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressSink(Sink):
    """Reports frames, FPS, mean active depth share and (finite sources) ETA; writes nothing else.

    total: frames the source will deliver (None = live / unknown: no ETA). every_s: seconds between
    reports. tty: force in-place (True) or line mode (False); default: stream.isatty().
    clock: injectable for tests.
    """

    name = "progress"

    def __init__(self, total: Optional[int] = None, stream: Optional[TextIO] = None, every_s: float = 5.0,
                 tty: Optional[bool] = None, clock: Callable[[], float] = time.monotonic, label: str = "run"):
        super().__init__()
        self.total, self.stream, self.label, self.clock = total, stream or sys.stderr, label, clock
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self.every_s = 0.5 if self.tty and every_s >= 5.0 else every_s
        self.t0: Optional[float] = None
        self.last = None
        self.depth_sum = 0.0
        self.reports = 0
        self._width = 0
        self._reported_frames = -1

    def line(self, now: float) -> str:
        n = self.frames_written
        dt = max(now - self.t0, 1e-9) if self.t0 is not None else 1e-9
        fps = n / dt
        parts = [f"{self.label}: {n}{f'/{self.total}' if self.total else ''} frames", f"{fps:.1f} FPS"]
        parts.append(f"depth active {100.0 * self.depth_sum / max(n, 1):.0f}%")
        if self.total:
            parts.append(f"ETA {_fmt_eta((self.total - n) / fps) if fps > 0 else '?'}")
        return "  ".join(parts)

    def _emit(self, now: float) -> None:
        text = self.line(now)
        if self.tty:
            pad = max(self._width - len(text), 0)
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.reports += 1
        self.last = now
        self._reported_frames = self.frames_written

    def write(self, result: Result) -> None:
        now = self.clock()
        if self.t0 is None:
            self.t0 = now
            self.last = now
        super().write(result)
        self.depth_sum += float(getattr(result, "depth_fraction", 0.0) or 0.0)
        if now - self.last >= self.every_s:
            self._emit(now)

    def _write(self, result: Result) -> None:  # counting happens in Sink.write
        pass

    def _close(self) -> None:
        if self.frames_written and self.t0 is not None and self.frames_written != self._reported_frames:
            self._emit(self.clock())
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()


def source_length(source) -> Optional[int]:
    """Frames a finite source will deliver, when it knows: len() (lists, folders, synthetic://), the
    labels sidecar of a recording (one entry per frame), a total_frames attribute; else None."""
    if getattr(source, "live", False):
        return None
    if hasattr(source, "__len__"):
        try:
            return int(len(source))
        except TypeError:
            pass
    labels = getattr(source, "labels", None)
    if isinstance(labels, dict) and labels:  # PlaybackSource: labels by frame number, every frame labelled
        return len(labels)
    n = getattr(source, "total_frames", None) or getattr(source, "num_frames", None)
    return int(n) if isinstance(n, int) and n > 0 else None


def bar(iterable: Iterable, total: Optional[int] = None, desc: str = "", unit: str = "frame",
        stream: Optional[TextIO] = None):
    """A tqdm bar on stderr when tqdm is installed (it is in every extra that has eval/calibrate)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream or sys.stderr, leave=False,
                mininterval=1.0 if not (stream or sys.stderr).isatty() else 0.1)

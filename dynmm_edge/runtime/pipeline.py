"""Threaded capture -> inference -> output pipeline with bounded queues.

Why threads: capture (USB / file decode), inference (GPU, releases the GIL) and output (video
encode, window) overlap, so throughput is set by the slowest stage rather than the sum.
Live sources must never fall behind the camera: when inference is busy the OLDEST waiting frame
is dropped (and counted). Offline sources block instead, so every frame is processed in order.
"""
import collections
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

from dynmm_edge.errors import BadFrame, DynMMError
from dynmm_edge.types import Frame, Result

_POLL_S = 0.05
_END = object()


class PipelineStageError(DynMMError):
    """A stage (capture, inference, output) raised; `stage` names it, __cause__ is the original."""

    def __init__(self, stage: str, exc: BaseException, stats=None):
        super().__init__(f"{stage} stage failed: {type(exc).__name__}: {exc}")
        self.stage = stage
        self.original = exc
        self.stats = stats


@dataclass(frozen=True)
class PipelineStats:
    """frames_in: taken from the source; frames_out: written to the sinks; dropped: discarded
    (live overflow, or left in flight when stopped early). frames_in == frames_out + dropped.
    bad_frames: frames the source could not read (not in frames_in).
    stop_reason: 'end' | 'max_frames' | 'stop_event' | 'sink' | 'interrupted' | 'bad_frame' | 'error'.
    signal: the stop signal number when interrupted (2 SIGINT, 15 SIGTERM, 1 SIGHUP), else None."""
    frames_in: int
    frames_out: int
    dropped: int
    wall_s: float
    fps: float
    errors: Tuple[str, ...] = ()
    max_queue_len: int = 0
    stop_reason: str = "end"
    bad_frames: int = 0
    signal: Optional[int] = None

    @property
    def completed(self) -> bool:
        """True only when the source ended or the frame limit was reached."""
        return self.stop_reason in ("end", "max_frames") and not self.errors


class _BoundedQueue:
    """deque + condition: blocking put for offline, drop-oldest put for live, stop-aware waits."""

    def __init__(self, size: int, stop: threading.Event):
        self.size = size
        self._q = collections.deque()
        self._cv = threading.Condition()
        self._stop = stop
        self.max_len = 0

    def __len__(self):
        with self._cv:
            return len(self._q)

    def _append(self, item):
        self._q.append(item)
        self.max_len = max(self.max_len, len(self._q))
        self._cv.notify_all()

    def put(self, item) -> bool:
        """Block while full; False when the pipeline stopped before there was room."""
        with self._cv:
            while len(self._q) >= self.size:
                if self._stop.is_set():
                    return False
                self._cv.wait(_POLL_S)
            self._append(item)
            return True

    def put_drop_oldest(self, item) -> int:
        """Never blocks; returns how many old items were dropped to make room."""
        dropped = 0
        with self._cv:
            while len(self._q) >= self.size:
                self._q.popleft()
                dropped += 1
            self._append(item)
        return dropped

    def put_force(self, item) -> None:
        """End-of-stream marker: may exceed the size by one, so it can never be lost or block."""
        with self._cv:
            self._q.append(item)
            self._cv.notify_all()

    def get(self):
        """Block until an item arrives; None once the pipeline is stopping (leftovers count as dropped)."""
        with self._cv:
            while True:
                if self._stop.is_set():
                    return None
                if self._q:
                    break
                self._cv.wait(_POLL_S)
            item = self._q.popleft()
            self._cv.notify_all()
            return item

    def drain(self) -> int:
        with self._cv:
            n = sum(1 for x in self._q if x is not _END)
            self._q.clear()
            return n


ON_BAD_FRAME = ("skip", "stop")


class Pipeline:
    """Three threads (capture, inference, output) joined by two bounded queues.

    Sinks are written but not closed (the caller owns them). A failing stage stops the others and
    run() raises PipelineStageError naming it; frames the source already delivered are still
    written when capture fails or a bad frame stops the run. Ctrl-C / SIGTERM / SIGHUP (as
    KeyboardInterrupt in the main thread) return normally with stop_reason='interrupted' and the
    signal number, so the caller can finalise outputs and exit 128 + signal.
    """

    def __init__(self, source, infer_fn: Callable[[Frame], Result], sinks: Sequence = (), *, queue_size: int = 4,
                 max_frames: Optional[int] = None, stop_event: Optional[threading.Event] = None,
                 on_result: Optional[Callable[[Result], None]] = None, join_timeout_s: float = 1.0,
                 on_bad_frame: str = "skip"):
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        if on_bad_frame not in ON_BAD_FRAME:
            raise ValueError(f"on_bad_frame must be one of {ON_BAD_FRAME}, got {on_bad_frame!r}")
        self.source, self.infer_fn, self.on_result = source, infer_fn, on_result
        self.sinks = [sinks] if hasattr(sinks, "write") else list(sinks)
        self.max_frames, self.stop_event, self.join_timeout_s = max_frames, stop_event, join_timeout_s
        self.on_bad_frame = on_bad_frame
        self.live = bool(getattr(source, "live", False))
        if hasattr(source, "yield_bad_frames"):
            source.yield_bad_frames = True  # unreadable frames come as BadFrame items, not as the end
        self.stop = threading.Event()  # hard stop: every stage leaves now
        self.done = threading.Event()
        self.in_q = _BoundedQueue(queue_size, self.stop)
        self.out_q = _BoundedQueue(queue_size, self.stop)
        self._lock = threading.Lock()
        self._in = self._out = self._dropped = self._bad = 0
        self._errors: list = []
        self._reason: Optional[str] = None
        self._signal: Optional[int] = None

    # ------------------------------------------------------------------ shared state (locked)
    def _add(self, **counts) -> None:
        with self._lock:
            self._in += counts.get("frames_in", 0)
            self._out += counts.get("frames_out", 0)
            self._dropped += counts.get("dropped", 0)
            self._bad += counts.get("bad", 0)

    def _set_reason(self, why: str) -> None:
        with self._lock:
            if self._reason is None:
                self._reason = why

    def _finish(self, why: str) -> None:
        self._set_reason(why)
        self.stop.set()

    def _fail(self, stage: str, exc: BaseException, drain: bool = False) -> None:
        """Record a stage failure; drain=True lets frames already queued reach the sinks first."""
        with self._lock:
            self._errors.append((stage, exc))
        if drain:
            self._set_reason("error")
        else:
            self._finish("error")

    # ------------------------------------------------------------------------------- stages
    def _capture(self) -> None:
        try:
            for frame in self.source:
                if self.stop.is_set():
                    break
                if isinstance(frame, BadFrame):
                    self._add(bad=1)
                    if self.on_bad_frame == "stop":
                        self._set_reason("bad_frame")
                        self._fail("capture", frame, drain=True)
                        break
                    continue
                if not self._enqueue(frame):
                    break
                if self.max_frames is not None and self._in >= self.max_frames:
                    self._set_reason("max_frames")
                    break
        except BaseException as exc:  # noqa: BLE001  (re-raised in run())
            self._fail("capture", exc, drain=True)
        finally:
            self.in_q.put_force(_END)

    def _enqueue(self, frame) -> bool:
        with self._lock:
            self._in += 1
            frame.meta["bad_frames_before"] = self._bad
        if self.live:
            self._add(dropped=self.in_q.put_drop_oldest(frame))
            return True
        if self.in_q.put(frame):
            return True
        self._add(dropped=1)
        return False

    def _inference(self) -> None:
        try:
            while True:
                frame = self.in_q.get()
                if frame is None:
                    return
                if frame is _END:
                    self.out_q.put_force(_END)
                    return
                result = self.infer_fn(frame)
                if result is None:
                    raise TypeError(f"infer_fn returned None for frame {frame.frame_id}")
                if getattr(result, "frame", None) is None:
                    result.frame = frame
                if not self.out_q.put(result):
                    self._add(dropped=1)
                    return
        except BaseException as exc:  # noqa: BLE001
            self._fail("inference", exc)

    def _output(self) -> None:
        try:
            while True:
                result = self.out_q.get()
                if result is None:
                    return
                if result is _END:
                    self._finish("end")
                    return
                for sink in self.sinks:
                    sink.write(result)
                if self.on_result is not None:
                    self.on_result(result)
                self._add(frames_out=1)
                if any(getattr(s, "wants_stop", False) for s in self.sinks):
                    self._finish("sink")
                    return
        except BaseException as exc:  # noqa: BLE001
            self._fail("output", exc)
        finally:
            self.done.set()

    # ---------------------------------------------------------------------------------- run
    def run(self) -> PipelineStats:
        threads = [threading.Thread(target=f, name=f"dynmm{f.__name__}", daemon=True)
                   for f in (self._capture, self._inference, self._output)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        try:
            while not self.done.wait(_POLL_S):
                if self.stop_event is not None and self.stop_event.is_set():
                    self._finish("stop_event")
                    break
                if self.stop.is_set() and not any(t.is_alive() for t in threads[1:]):
                    break
        except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM / SIGHUP through dynmm_edge.signals
            self._signal = getattr(exc, "signum", 2)
            self._finish("interrupted")
        self.stop.set()
        deadline = time.perf_counter() + self.join_timeout_s
        for t in threads:
            t.join(max(0.0, deadline - time.perf_counter()))
        stats = self._stats(time.perf_counter() - t0)
        if self._errors:
            stage, exc = self._errors[0]
            raise PipelineStageError(stage, exc, stats) from exc
        return stats

    def _stats(self, wall: float) -> PipelineStats:
        with self._lock:
            self._dropped += self.in_q.drain() + self.out_q.drain()
            # a frame still inside a stuck thread (joined with timeout) is also lost
            in_flight = self._in - self._out - self._dropped
            if in_flight > 0 and self._reason != "end":
                self._dropped += in_flight
            return PipelineStats(
                frames_in=self._in, frames_out=self._out, dropped=self._dropped, wall_s=wall,
                fps=self._out / wall if wall > 0 else 0.0,
                errors=tuple(f"{stage}: {type(e).__name__}: {e}" for stage, e in self._errors),
                max_queue_len=max(self.in_q.max_len, self.out_q.max_len), stop_reason=self._reason or "end",
                bad_frames=self._bad, signal=self._signal)


def run_pipeline(source, infer_fn: Callable[[Frame], Result], sinks: Sequence = (), **kwargs) -> PipelineStats:
    """Run source -> infer_fn -> sinks until end of stream, max_frames, stop_event, a sink's
    wants_stop or a stop signal (see Pipeline for the keywords and error handling)."""
    return Pipeline(source, infer_fn, sinks, **kwargs).run()

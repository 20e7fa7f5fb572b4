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

from dynmm_edge.errors import DynMMError
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
    stop_reason: 'end' | 'max_frames' | 'stop_event' | 'sink' | 'interrupted' | 'error'."""
    frames_in: int
    frames_out: int
    dropped: int
    wall_s: float
    fps: float
    errors: Tuple[str, ...] = ()
    max_queue_len: int = 0
    stop_reason: str = "end"


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


def run_pipeline(source, infer_fn: Callable[[Frame], Result], sinks: Sequence = (), *, queue_size: int = 4,
                 max_frames: Optional[int] = None, stop_event: Optional[threading.Event] = None,
                 on_result: Optional[Callable[[Result], None]] = None, join_timeout_s: float = 1.0) -> PipelineStats:
    """Run source -> infer_fn -> sinks until end of stream, max_frames, stop_event, a sink's
    wants_stop or Ctrl-C. Sinks are written but not closed (the caller owns them).

    Exceptions in any stage stop everything and are raised here as PipelineStageError naming the
    stage. Ctrl-C returns normally with stop_reason='interrupted' so the caller can finalise outputs.
    """
    if queue_size < 1:
        raise ValueError(f"queue_size must be >= 1, got {queue_size}")
    if hasattr(sinks, "write"):
        sinks = [sinks]
    sinks = list(sinks)
    live = bool(getattr(source, "live", False))
    stop = threading.Event()
    done = threading.Event()
    in_q = _BoundedQueue(queue_size, stop)
    out_q = _BoundedQueue(queue_size, stop)
    lock = threading.Lock()
    counts = {"in": 0, "out": 0, "dropped": 0}
    errors = []
    reason = {"value": None}

    def finish(why):
        with lock:
            if reason["value"] is None:
                reason["value"] = why
        stop.set()

    def fail(stage, exc):
        with lock:
            errors.append((stage, exc))
        finish("error")

    def capture():
        try:
            for frame in source:
                if stop.is_set():
                    break
                with lock:
                    counts["in"] += 1
                if live:
                    n = in_q.put_drop_oldest(frame)
                    if n:
                        with lock:
                            counts["dropped"] += n
                elif not in_q.put(frame):
                    with lock:
                        counts["dropped"] += 1
                    break
                if max_frames is not None and counts["in"] >= max_frames:
                    with lock:
                        if reason["value"] is None:
                            reason["value"] = "max_frames"
                    break
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller)
            fail("capture", exc)
        finally:
            in_q.put_force(_END)

    def inference():
        try:
            while True:
                frame = in_q.get()
                if frame is None:
                    return
                if frame is _END:
                    out_q.put_force(_END)
                    return
                result = infer_fn(frame)
                if result is None:
                    raise TypeError(f"infer_fn returned None for frame {frame.frame_id}")
                if getattr(result, "frame", None) is None:
                    result.frame = frame
                if not out_q.put(result):
                    with lock:
                        counts["dropped"] += 1
                    return
        except BaseException as exc:  # noqa: BLE001
            fail("inference", exc)

    def output():
        try:
            while True:
                result = out_q.get()
                if result is None:
                    return
                if result is _END:
                    finish(reason["value"] or "end")
                    return
                for sink in sinks:
                    sink.write(result)
                if on_result is not None:
                    on_result(result)
                with lock:
                    counts["out"] += 1
                if any(getattr(s, "wants_stop", False) for s in sinks):
                    finish("sink")
                    return
        except BaseException as exc:  # noqa: BLE001
            fail("output", exc)
        finally:
            done.set()

    threads = [threading.Thread(target=f, name=f"dynmm-{f.__name__}", daemon=True)
               for f in (capture, inference, output)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    try:
        while not done.wait(_POLL_S):
            if stop_event is not None and stop_event.is_set():
                finish("stop_event")
                break
            if stop.is_set() and not any(t.is_alive() for t in threads[1:]):
                break
    except KeyboardInterrupt:
        finish("interrupted")
    stop.set()
    deadline = time.perf_counter() + join_timeout_s
    for t in threads:
        t.join(max(0.0, deadline - time.perf_counter()))
    wall = time.perf_counter() - t0
    with lock:
        leftover = in_q.drain() + out_q.drain()
        counts["dropped"] += leftover
        # a frame still inside a stuck thread (joined with timeout) is also lost
        in_flight = counts["in"] - counts["out"] - counts["dropped"]
        if in_flight > 0 and reason["value"] != "end":
            counts["dropped"] += in_flight
        stats = PipelineStats(
            frames_in=counts["in"], frames_out=counts["out"], dropped=counts["dropped"], wall_s=wall,
            fps=counts["out"] / wall if wall > 0 else 0.0,
            errors=tuple(f"{stage}: {type(e).__name__}: {e}" for stage, e in errors),
            max_queue_len=max(in_q.max_len, out_q.max_len), stop_reason=reason["value"] or "end")
    if errors:
        stage, exc = errors[0]
        raise PipelineStageError(stage, exc, stats) from exc
    return stats

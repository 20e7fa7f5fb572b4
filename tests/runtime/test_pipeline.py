"""Threaded pipeline: order, drops for live sources, shutdown, error propagation."""
import _thread
import threading
import time

import numpy as np
import pytest

from dynmm_edge.io.base import FrameSource, ListSource
from dynmm_edge.testing import FakeLiveSource
from dynmm_edge.runtime.pipeline import PipelineStageError, run_pipeline
from dynmm_edge.types import Frame, Result


def _frame(i):
    return Frame(i, np.zeros((4, 6, 3), np.uint8), np.zeros((4, 6), np.uint16))


def _infer(delay=0.0):
    def fn(frame):
        if delay:
            time.sleep(delay)
        return Result(frame.frame_id, np.zeros((4, 6), np.int64), 0, {"total": delay * 1e3}, ("trunk",))
    return fn


class Collect:
    name = "collect"
    wants_stop = False

    def __init__(self, delay=0.0, stop_after=None):
        self.ids, self.delay, self.stop_after = [], delay, stop_after

    def write(self, result):
        assert result.frame is not None and result.frame.frame_id == result.frame_id
        if self.delay:
            time.sleep(self.delay)
        self.ids.append(result.frame_id)
        if self.stop_after is not None and len(self.ids) >= self.stop_after:
            self.wants_stop = True


def test_offline_source_loses_nothing_and_keeps_order():
    sink = Collect(delay=0.001)
    seen = []
    stats = run_pipeline(ListSource([_frame(i) for i in range(60)]), _infer(0.002), [sink], queue_size=2,
                         on_result=lambda r: seen.append(r.frame_id))
    assert sink.ids == list(range(60)) and seen == list(range(60))
    assert (stats.frames_in, stats.frames_out, stats.dropped) == (60, 60, 0)
    assert stats.stop_reason == "end" and stats.fps > 0 and stats.max_queue_len <= 2


def test_live_source_with_slow_consumer_drops_oldest_with_bounded_queue():
    src = FakeLiveSource(_frame, num_frames=80, fps=400)
    sink = Collect()
    stats = run_pipeline(src, _infer(0.02), [sink], queue_size=3)
    assert stats.max_queue_len <= 3
    assert stats.dropped > 0
    assert stats.frames_in == src.produced == 80
    assert stats.frames_in == stats.frames_out + stats.dropped
    assert sink.ids == sorted(sink.ids) and len(sink.ids) == stats.frames_out
    assert sink.ids[-1] == 79  # the newest frame survives; the oldest ones were dropped


def test_max_frames_limits_input():
    sink = Collect()
    stats = run_pipeline(ListSource([_frame(i) for i in range(20)]), _infer(), sink, max_frames=5)
    assert sink.ids == [0, 1, 2, 3, 4] and stats.frames_in == 5 and stats.stop_reason == "max_frames"


def test_stop_event_shuts_down_within_a_second():
    stop = threading.Event()
    src = FakeLiveSource(_frame, num_frames=None, fps=100)  # endless camera
    threading.Timer(0.3, stop.set).start()
    t0 = time.perf_counter()
    stats = run_pipeline(src, _infer(0.005), [Collect()], stop_event=stop)
    assert time.perf_counter() - t0 < 0.3 + 1.0
    assert stats.stop_reason == "stop_event" and stats.frames_out > 0
    assert stats.frames_in == stats.frames_out + stats.dropped


def test_ctrl_c_returns_interrupted_quickly():
    src = FakeLiveSource(_frame, num_frames=None, fps=100)
    threading.Timer(0.3, _thread.interrupt_main).start()
    t0 = time.perf_counter()
    stats = run_pipeline(src, _infer(0.005), [Collect()])
    assert time.perf_counter() - t0 < 0.3 + 1.0 and stats.stop_reason == "interrupted"


def test_sink_wants_stop_ends_pipeline():
    sink = Collect(stop_after=4)
    stats = run_pipeline(ListSource([_frame(i) for i in range(50)]), _infer(), [sink])
    assert sink.ids == [0, 1, 2, 3] and stats.stop_reason == "sink" and stats.frames_out == 4


def test_exception_in_infer_propagates_with_stage_named():
    def bad(frame):
        if frame.frame_id == 3:
            raise ValueError("bad tensor 'depth'")
        return _infer()(frame)
    t0 = time.perf_counter()
    with pytest.raises(PipelineStageError) as e:
        run_pipeline(ListSource([_frame(i) for i in range(100)]), bad, [Collect()])
    assert time.perf_counter() - t0 < 1.5
    assert e.value.stage == "inference" and "inference stage failed" in str(e.value)
    assert "bad tensor 'depth'" in str(e.value) and isinstance(e.value.__cause__, ValueError)
    st = e.value.stats
    assert st.frames_out <= 3 and st.frames_in == st.frames_out + st.dropped and st.stop_reason == "error"
    assert st.errors == ("inference: ValueError: bad tensor 'depth'",)


def test_exceptions_in_capture_and_output_name_their_stage():
    class Broken(FrameSource):
        def _frames(self):
            yield _frame(0)
            raise OSError("usb gone")

    with pytest.raises(PipelineStageError) as e:
        run_pipeline(Broken(), _infer(), [Collect()])
    assert e.value.stage == "capture" and "usb gone" in str(e.value)

    class BadSink(Collect):
        def write(self, result):
            raise IOError("disk full")
    with pytest.raises(PipelineStageError) as e:
        run_pipeline(ListSource([_frame(i) for i in range(5)]), _infer(), [BadSink()])
    assert e.value.stage == "output" and "disk full" in str(e.value)

"""Progress reporting for long runs: line mode off a terminal, in place on one; eval/calibrate bars."""
import io

import numpy as np
import pytest

from dynmm_edge.io.progress import ProgressSink, source_length
from dynmm_edge.types import Result


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def _result(i, frac):
    return Result(frame_id=i, labels=np.zeros((2, 2), np.uint8), path=3, times_ms={}, branches_run=(),
                  depth_fraction=frac)


def test_line_mode_every_n_seconds_with_eta():
    out, clock = io.StringIO(), Clock()
    sink = ProgressSink(total=40, stream=out, every_s=2.0, tty=False, clock=clock)
    for i in range(16):  # 8 FPS; odd frames run all depth, even frames none
        sink.write(_result(i, 1.0 if i % 2 else 0.0))
        clock.t += 0.125
    assert out.getvalue() == ""  # 1.875 s: no report yet
    sink.write(_result(16, 0.0))  # t0 + 2.0 s
    line = out.getvalue().splitlines()[-1]
    assert line == "run: 17/40 frames  8.5 FPS  depth active 47%  ETA 0:03"
    assert "\r" not in out.getvalue()
    sink.close()
    assert len(out.getvalue().splitlines()) == 1  # no frame since that line: close does not repeat it


def test_close_does_not_repeat_a_line_already_reported():
    out, clock = io.StringIO(), Clock()
    sink = ProgressSink(total=3, stream=out, every_s=1.0, tty=False, clock=clock)
    for i in range(3):
        sink.write(_result(i, 0.5))
        clock.t += 1.0
    sink.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("run: 3/3 frames")


def test_tty_mode_rewrites_one_line_and_live_sources_have_no_eta():
    out, clock = io.StringIO(), Clock()
    sink = ProgressSink(total=None, stream=out, tty=True, clock=clock)
    for i in range(10):
        sink.write(_result(i, 0.5))
        clock.t += 0.25
    sink.close()
    text = out.getvalue()
    assert text.count("\r") >= 4 and text.endswith("\n") and text.count("\n") == 1
    assert "ETA" not in text and "run: 10 frames" in text


def test_source_length():
    from dynmm_edge.io.base import ListSource
    assert source_length(ListSource([])) == 0
    assert source_length(ListSource([], live=True)) is None
    assert source_length(object()) is None


@pytest.mark.skipif(not __import__("dynmm_edge._lazy", fromlist=["available"]).available("onnxruntime"),
                    reason="needs onnxruntime")
def test_run_prints_progress_lines_when_not_a_tty(capsys):
    from dynmm_edge.apps.cli import main
    assert main(["run", "demo", "--source", "synthetic://?frames=6&width=128&height=96", "--sink", "null://",
                 "--threads", "1", "--progress-every", "0"]) == 0
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("run: ")]
    assert len(err) >= 6 and err[-1].startswith("run: 6/6 frames") and "FPS" in err[-1] and "depth active" in err[-1]
    assert "ETA 0:00" in err[-1]
    assert main(["run", "demo", "--source", "synthetic://?frames=3&width=128&height=96", "--quiet",
                 "--threads", "1"]) == 0
    assert "run: " not in capsys.readouterr().err

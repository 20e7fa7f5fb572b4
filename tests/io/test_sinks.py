"""Sinks (jsonl, png, video, null, multi), URI errors, and the overlay helpers."""
import json

from dynmm_edge.atomic import current_umask

import numpy as np
import pytest

from dynmm_edge._lazy import available
from dynmm_edge.errors import DataError
from dynmm_edge.io.sinks import MultiSink, open_sink, open_sinks
from dynmm_edge.types import Frame, Result
from dynmm_edge.viz.overlay import colorize, draw_hud, overlay, resize_nearest

needs_cv2 = pytest.mark.skipif(not available("cv2"), reason="opencv-python not installed")
PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def _result(i, w=32, h=24):
    rgb = np.full((h, w, 3), 100, np.uint8)
    labels = np.zeros((h // 2, w // 2), np.int64)  # model output smaller than the frame
    labels[:, : w // 4] = 1
    labels[0, 0] = 255
    frame = Frame(i, rgb, np.full((h, w), 1000, np.uint16))
    return Result(frame_id=i, labels=labels, path=i % 3, times_ms={"gate": 0.5, "total": 2.0 + i},
                  branches_run=("gate", "depth0", "trunk")[: 1 + i % 3], gate_probs=np.array([0.2, 0.8]),
                  depth_macs=1e9 * i, frame=frame)


def test_colorize_overlay_resize():
    lab = np.array([[0, 1], [2, 255]], np.uint8)
    col = colorize(lab, PALETTE)
    assert col.shape == (2, 2, 3) and tuple(col[0, 1]) == (0, 255, 0) and tuple(col[1, 1]) == (0, 0, 0)
    big = resize_nearest(lab, 4, 4)
    assert big.shape == (4, 4) and big[3, 3] == 255 and big[0, 1] == 0 and big[0, 2] == 1
    rgb = np.full((4, 4, 3), 100, np.uint8)
    out = overlay(rgb, lab, PALETTE, alpha=0.5)
    assert out.shape == (4, 4, 3)
    assert tuple(out[0, 0]) == (178, 50, 50)      # 0.5 * 100 + 0.5 * (255, 0, 0), rounded
    assert tuple(out[3, 3]) == (100, 100, 100)   # void keeps the image
    assert tuple(overlay(rgb, lab, PALETTE, alpha=0.0)[0, 0]) == (100, 100, 100)
    with pytest.raises(DataError, match="alpha"):
        overlay(rgb, lab, PALETTE, alpha=1.5)
    with pytest.raises(DataError, match="palette"):
        colorize(lab, [(1, 2)])


@needs_cv2
def test_draw_hud_changes_top_left_only():
    img = np.full((60, 120, 3), 200, np.uint8)
    out = draw_hud(img, ["FPS 30.0", "path 2"])
    assert out.shape == img.shape and (img == 200).all()  # input untouched
    assert (out[:30, :60] != 200).any() and (out[-5:, -5:] == 200).all()


def test_jsonl_sink_one_flushed_line_per_frame(tmp_path):
    path = tmp_path / "stats.jsonl"
    path.write_text("old run\n")
    sink = open_sink(f"jsonl://{path}?gate_probs=1")
    for i in range(3):
        sink.write(_result(i))
        assert len(sink.tmp_path.read_text().splitlines()) == i + 1  # flushed per line, before close
        assert path.read_text() == "old run\n"  # the old file is replaced only by a finished run
    sink.close()
    assert not sink.tmp_path.exists()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["frame_id"] for r in rows] == [0, 1, 2]
    assert set(rows[0]) == {"frame_id", "path", "branches_run", "times_ms", "depth_macs", "gate_probs"}
    assert rows[2]["branches_run"] == ["gate", "depth0", "trunk"] and rows[2]["depth_macs"] == 2e9
    assert rows[1]["times_ms"]["total"] == 3.0 and rows[1]["gate_probs"] == [0.2, 0.8]
    # plain path works too, without gate_probs by default
    with open_sink(tmp_path / "b.jsonl") as s2:
        s2.write(_result(0))
    assert "gate_probs" not in json.loads((tmp_path / "b.jsonl").read_text())


@needs_cv2
def test_png_sink_labels_and_overlays_per_frame(tmp_path):
    import cv2
    out = tmp_path / "pngs"
    with open_sink(f"png://{out}?overlay=1", palette=PALETTE) as sink:
        for i in (3, 4):
            sink.write(_result(i))
    files = sorted(p.name for p in out.iterdir())
    assert files == ["000003.png", "000003_overlay.png", "000004.png", "000004_overlay.png"]
    lab = cv2.imread(str(out / "000003.png"), cv2.IMREAD_UNCHANGED)
    assert lab.dtype == np.uint8 and lab.shape == (12, 16) and lab[0, 0] == 255 and lab[5, 2] == 1 and lab[5, 10] == 0
    ov = cv2.imread(str(out / "000004_overlay.png"))
    assert ov.shape == (24, 32, 3)
    # a path ending in '/' is a png sink; labels that do not fit 8 bits are an error naming the frame
    sink = open_sink(str(tmp_path / "more") + "/")
    bad = _result(7)
    bad.labels = np.full((4, 4), 300)
    with pytest.raises(DataError, match="frame 7"):
        sink.write(bad)


@needs_cv2
def test_video_sink_writes_readable_mp4_and_leaves_no_temp(tmp_path):
    import cv2
    path = tmp_path / "out.mp4"
    sink = open_sink(path, palette=PALETTE, fps=10)
    for i in range(5):
        sink.write(_result(i))
    # only the hidden temp and the writer's lock so far
    assert not path.exists() and sorted(p.suffix for p in tmp_path.iterdir()) == [".lock", ".mp4"]
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # normal permissions, not mkstemp's 0600
    cap = cv2.VideoCapture(str(path))
    try:
        assert cap.isOpened()
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
        ok, img = cap.read()
        assert ok and img.shape == (24, 32, 3)
    finally:
        cap.release()


@needs_cv2
def test_video_sink_aborted_on_error_leaves_nothing(tmp_path):
    path = tmp_path / "crash.avi"
    with pytest.raises(RuntimeError):
        with open_sink(f"file://{path}") as sink:
            sink.write(_result(0))
            raise RuntimeError("inference blew up")
    assert list(tmp_path.iterdir()) == []


def test_sink_uri_errors_and_null(tmp_path):
    with pytest.raises(DataError) as e:
        open_sink("rtsp://host/stream")
    assert "rtsp" in str(e.value) and "jsonl://" in str(e.value) and "png://" in str(e.value)
    with pytest.raises(DataError) as e:
        open_sink(f"jsonl://{tmp_path / 'a.jsonl'}?flush=0")
    assert "flush" in str(e.value) and "gate_probs" in str(e.value)
    with pytest.raises(DataError, match="cannot tell"):
        open_sink(tmp_path / "out.txt")
    with pytest.raises(DataError, match="needs a path"):
        open_sink("png://")
    null = open_sink("null://")
    null.write(_result(0))
    assert null.frames_written == 1 and not null.wants_stop


def test_multi_sink_fans_out_and_reports_wants_stop(tmp_path):
    multi = open_sinks(["null://", tmp_path / "s.jsonl"])
    assert isinstance(multi, MultiSink) and len(multi.sinks) == 2
    for i in range(2):
        multi.write(_result(i))
    multi.close()
    assert [s.frames_written for s in multi.sinks] == [2, 2]
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 2

    class Stopper:
        name, wants_stop = "stopper", True
    assert MultiSink([multi.sinks[0], Stopper()]).wants_stop
    with pytest.raises(DataError, match="unknown sink scheme"):
        open_sinks(["null://", "bogus://x"])


@needs_cv2
def test_display_sink_renders_overlay_hud_and_stops_on_q(monkeypatch):
    """No screen in CI: OpenCV's window calls are replaced, rendering is real."""
    import types
    monkeypatch.setenv("DISPLAY", ":99")  # the pre-run display check passes; the window calls are faked

    import cv2
    shown = []
    keys = iter([-1, ord("q")])
    fake = types.SimpleNamespace(
        imshow=lambda title, img: shown.append((title, img.copy())), waitKey=lambda ms: next(keys),
        getWindowProperty=lambda *a: 1.0, WND_PROP_VISIBLE=cv2.WND_PROP_VISIBLE, destroyWindow=lambda t: None,
        cvtColor=cv2.cvtColor, COLOR_RGB2BGR=cv2.COLOR_RGB2BGR)
    sink = open_sink("display://demo?hud=1", palette=PALETTE, alpha=0.5)
    sink._cv2 = fake
    sink.write(_result(1, w=320, h=240))
    assert not sink.wants_stop
    sink.write(_result(2, w=320, h=240))
    assert sink.wants_stop
    sink.close()
    title, img = shown[0]
    assert title == "demo" and img.shape == (240, 320, 3)
    assert (img[:20, :100] != img[-1, -1]).any()  # the HUD is drawn
    # bottom-right pixel (outside the HUD box): label 0 -> red (255,0,0) blended 50% over grey 100, in BGR
    assert tuple(img[-1, -1]) == (50, 50, 178)


def test_hud_reports_share_of_depth_compute_skipped():
    from dynmm_edge.io.sinks import _Renderer
    from dynmm_edge.types import Result
    r = _Renderer(None, None, 0.5, hud=True)
    lines = [r.hud_lines(Result(i, np.zeros((4, 4), np.int32), p, {"total": 5.0}, (), depth_fraction=f))
             for i, (p, f) in enumerate([(2, 0.4), (5, 1.0)])]
    assert lines[0][2] == "depth compute skipped: 60.0%"
    assert lines[1][2] == "depth compute skipped: 30.0%"
    assert "path 5" in lines[1][1]


def test_hud_first_frame_fps_is_never_zero_and_legend_lists_present_classes():
    pytest.importorskip("cv2")
    from dynmm_edge.io.sinks import _Renderer
    from dynmm_edge.types import Frame, Result
    from dynmm_edge.viz.overlay import draw_legend, hud_fps
    r = _Renderer(None, None, 0.5, hud=True)
    first = r.hud_lines(Result(0, np.zeros((4, 4), np.int32), 2, {"total": 20.0}, ()))
    assert first[0].startswith("FPS  50.0") and "FPS   0.0" not in first[0]
    assert hud_fps([1.0], None) == "   --" and hud_fps([1.0, 1.5, 2.0], 20.0) == "  2.0"
    labels = np.zeros((60, 80), np.uint8)
    labels[:, 40:] = 2
    labels[:5, :5] = 255
    img = np.full((60, 80, 3), 200, np.uint8)
    pal = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    out = draw_legend(img, labels, ["floor", "wall", "table"], pal, scale=0.3)
    colours = {tuple(int(v) for v in px) for px in out.reshape(-1, 3)}
    assert (255, 0, 0) in colours and (0, 0, 255) in colours and (0, 255, 0) not in colours  # only present classes
    assert np.array_equal(out[:20], img[:20])  # bottom-left box only
    rr = _Renderer(pal, ["floor", "wall", "table"], 0.5, hud=True)
    frame = Frame(0, img, None)
    shown = rr.render(Result(0, labels, 0, {"total": 5.0}, (), frame=frame))
    assert shown.shape == img.shape and (0, 0, 255) in {tuple(int(v) for v in px) for px in shown.reshape(-1, 3)}

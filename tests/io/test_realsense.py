"""RealSense playback (recordings made with software_device, no camera) and live-camera logic."""
import types

import numpy as np
import pytest

from dynmm_edge._lazy import available
from dynmm_edge.errors import DataError
from dynmm_edge.io.realsense import filter_plan
from dynmm_edge.io.sources import open_source
from dynmm_edge.types import Frame

needs_rs = pytest.mark.skipif(not available("pyrealsense2"), reason="pyrealsense2 (and libusb) not installed")
W, H, N = 64, 48, 10


def _frames(n=N, labels=True):
    out = []
    for i in range(n):
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[..., 0] = i
        rgb[:, :, 1] = np.arange(W, dtype=np.uint8)[None, :]
        depth = np.full((H, W), 1000 + 10 * i, np.uint16)
        depth[0, :] = 0  # holes survive playback
        depth[20, 30:32] = 0  # a small hole the hole-filling filter closes
        lab = np.full((H, W), i % 7, np.uint8) if labels else None
        out.append(Frame(i, rgb, depth, depth_scale_m=0.001, labels=lab))
    return out


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    if not available("pyrealsense2"):
        pytest.skip("pyrealsense2 not installed")
    from dynmm_edge.data.recording import write_recording
    path = tmp_path_factory.mktemp("rec") / "tiny.db3"
    assert write_recording(path, _frames()) == N
    return path


def test_filter_plan_follows_documented_order():
    assert filter_plan(["hole_filling", "temporal", "spatial", "decimation"]) == [
        "decimation", "to_disparity", "spatial", "temporal", "to_depth", "hole_filling"]
    assert filter_plan(["temporal"]) == ["to_disparity", "temporal", "to_depth"]
    assert filter_plan(["hole-filling", "decimation"]) == ["decimation", "hole_filling"]
    assert filter_plan([]) == []
    with pytest.raises(DataError, match="more than once"):
        filter_plan(["spatial", "spatial"])
    with pytest.raises(DataError, match="median"):
        filter_plan(["median"])


@needs_rs
def test_playback_delivers_every_frame_once_in_order_with_labels(recording):
    for _ in range(2):  # twice: non-real-time playback must not race the reader
        with open_source(recording) as src:
            assert not src.live and src.size == (W, H)
            got = list(src)
        assert [f.frame_id for f in got] == list(range(1, N + 1))  # write_recording numbers 1..N
        for k, f in enumerate(got):
            assert f.rgb.shape == (H, W, 3) and f.depth.shape == (H, W) and f.depth.dtype == np.uint16
            assert int(f.rgb[5, 5, 0]) == k and int(f.rgb[5, 7, 1]) == 7
            assert int(f.depth[5, 5]) == 1000 + 10 * k and int(f.depth[0, 3]) == 0
            assert f.labels is not None and int(f.labels[3, 3]) == k % 7
            assert f.depth_scale_m == pytest.approx(0.001, abs=1e-12)
        assert src.unmatched_color == 0 and src.unmatched_depth == 0


@needs_rs
def test_playback_file_uri_labels_none_and_filters(recording):
    with open_source(f"file://{recording}?labels=none&filters=hole_filling") as src:
        got = list(src)
    assert len(got) == N and all(f.labels is None for f in got)
    assert int(got[0].depth[20, 30]) == 1000 and int(got[0].depth[20, 31]) == 1000  # hole filled
    assert int(got[3].depth[20, 30]) == 1030
    with open_source(recording, filters=["decimation"]) as src:  # same geometry: left at decimated size
        got = list(src)
    assert len(got) == N and got[0].depth.shape == (H // 2, W // 2) and not src.aligned
    with open_source(recording, filters=["decimation"], align="color") as src:  # reprojected to colour
        got = list(src)
    assert got[2].depth.shape == (H, W) and src.aligned and int(got[2].depth[30, 30]) == 1020


@needs_rs
def test_playback_bad_sidecar_names_file_and_key(recording, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, numbers=np.arange(3))
    with pytest.raises(DataError) as e:
        open_source(recording, labels=str(bad))
    assert "bad.npz" in str(e.value) and "frame_numbers" in str(e.value)


def _record_raw(path, with_depth, with_color):
    """Minimal software_device recording with a chosen set of streams."""
    import gc
    import pyrealsense2 as rs
    dev = rs.software_device()
    intr = rs.intrinsics()
    intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = W, H, 50.0, 50.0, W / 2, H / 2
    intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
    sensors = []
    for kind, fmt, bpp, uid, on in ((rs.stream.depth, rs.format.z16, 2, 0, with_depth),
                                    (rs.stream.color, rs.format.rgb8, 3, 1, with_color)):
        if not on:
            continue
        s = dev.add_sensor(kind.name)
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid, vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = kind, 0, uid, W, H, 30, bpp, fmt
        vs.intrinsics = intr
        prof = s.add_video_stream(vs)
        if kind == rs.stream.depth:
            s.add_read_only_option(rs.option.depth_units, 0.001)
        sensors.append((s, prof, bpp))
    rec = rs.recorder(str(path), dev)
    q = rs.frame_queue(16)
    for s, prof, _ in sensors:
        s.open(prof)
        s.start(q)
    keep = []
    for i in range(3):
        for s, prof, bpp in sensors:
            pix = np.zeros((H, W) if bpp == 2 else (H, W, 3), np.uint16 if bpp == 2 else np.uint8)
            keep.append(pix)
            f = rs.software_video_frame()
            f.pixels, f.bpp, f.stride, f.timestamp = pix, bpp, W * bpp, i * 33.0
            f.domain, f.frame_number, f.profile = rs.timestamp_domain.hardware_clock, i + 1, prof.as_video_stream_profile()
            s.on_video_frame(f)
    for s, _, _ in sensors:
        s.stop()
        s.close()
    del rec, dev, sensors, q
    gc.collect()


@needs_rs
def test_recording_without_depth_stream_is_a_clear_error(tmp_path):
    path = tmp_path / "color_only.db3"
    _record_raw(path, with_depth=False, with_color=True)
    with pytest.raises(DataError) as e:
        open_source(path)
    msg = str(e.value)
    assert "color_only.db3" in msg and "no depth stream" in msg and "color" in msg.lower()


@needs_rs
def test_missing_recording_and_bad_options(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_source(tmp_path / "nope.db3")
    with pytest.raises(DataError, match="unknown option"):
        open_source(tmp_path / "nope.db3", fps=5)


@needs_rs
def test_no_camera_connected_message():
    import pyrealsense2 as rs
    if rs.context().query_devices().size() > 0:
        pytest.skip("a RealSense camera is connected")
    with pytest.raises(DataError) as e:
        open_source("realsense://?width=424&height=240&filters=temporal")
    assert "no RealSense device connected" in str(e.value)


# ------------------------------------------------------------------ live logic with a fake pyrealsense2
class _FakeFrame:
    def __init__(self, n, arr):
        self.n, self.arr = n, arr

    def __bool__(self):
        return True

    def get_frame_number(self):
        return self.n

    def get_data(self):
        return self.arr

    def get_timestamp(self):
        return 33.0 * self.n

    @property
    def profile(self):
        intr = types.SimpleNamespace(fx=1.0, fy=1.0, ppx=2.0, ppy=1.5)
        return types.SimpleNamespace(as_video_stream_profile=lambda: types.SimpleNamespace(get_intrinsics=lambda: intr))


class _FakeSet:
    def __init__(self, n):
        self.d = _FakeFrame(n, np.full((3, 4), n, np.uint16))
        self.c = _FakeFrame(n, np.full((3, 4, 3), n, np.uint8))

    def is_frameset(self):
        return True

    def as_frameset(self):
        return self

    def get_depth_frame(self):
        return self.d

    def get_color_frame(self):
        return self.c


def _fake_rs(script, devices=("123",)):
    """script: per pipeline start, the number of frames delivered before wait_for_frames raises."""
    starts = []

    class Pipeline:
        def start(self, cfg):
            starts.append(1)
            self.left = script[len(starts) - 1] if len(starts) <= len(script) else 0
            self.n = 0
            sensor = types.SimpleNamespace(get_depth_scale=lambda: 0.0001)
            return types.SimpleNamespace(get_device=lambda: types.SimpleNamespace(first_depth_sensor=lambda: sensor))

        def wait_for_frames(self, timeout):
            if self.left <= 0:
                raise RuntimeError("Frame didn't arrive within 50")
            self.left -= 1
            self.n += 1
            return _FakeSet(self.n)

        def stop(self):
            pass

    class Config:
        def enable_device(self, s):
            pass

        def enable_stream(self, *a):
            pass

    devs = [types.SimpleNamespace(get_info=lambda _k, s=s: s) for s in devices]
    rs = types.SimpleNamespace(
        context=lambda: types.SimpleNamespace(query_devices=lambda: devs), pipeline=Pipeline, config=Config,
        camera_info=types.SimpleNamespace(serial_number="sn"), stream=types.SimpleNamespace(depth=1, color=2),
        format=types.SimpleNamespace(z16=1, rgb8=2), align=None)
    return rs, starts


def test_live_source_disconnect_raises_data_error():
    from dynmm_edge.io.realsense import RealSenseSource
    rs, _ = _fake_rs([3])
    src = RealSenseSource(align="none", rs_module=rs, timeout_ms=50)
    assert src.live and src.depth_scale_m == 0.0001 and src.serial == "123"
    got = []
    with pytest.raises(DataError, match="camera disconnected"):
        for f in src:
            got.append(f)
    assert [f.frame_id for f in got] == [1, 2, 3] and got[0].depth_scale_m == 0.0001


def test_live_source_reconnects_with_increasing_ids_and_bounded_retries():
    from dynmm_edge.io.realsense import RealSenseSource
    rs, starts = _fake_rs([2, 2])
    src = RealSenseSource(align="none", rs_module=rs, reconnect=True, retries=2, timeout_ms=50)
    ids = []
    with pytest.raises(DataError, match="2 reconnect attempt"):
        for f in src:
            ids.append(f.frame_id)
    assert ids == [1, 2, 3, 4] and src.reconnects == 1 and len(starts) == 4  # 1 + reconnect + 2 failed


def test_live_source_unknown_serial_lists_connected():
    from dynmm_edge.io.realsense import RealSenseSource
    rs, _ = _fake_rs([1], devices=("111", "222"))
    with pytest.raises(DataError, match=r"serial '999'.*'111', '222'"):
        RealSenseSource(serial="999", align="none", rs_module=rs)

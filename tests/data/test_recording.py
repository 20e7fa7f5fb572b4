import numpy as np
import pytest

from dynmm_edge._lazy import available
from dynmm_edge.errors import DataError

pytestmark = pytest.mark.skipif(not available("pyrealsense2"),
                                reason="pyrealsense2 cannot be imported (pip install pyrealsense2; needs libusb-1.0-0)")

from dynmm_edge.data.recording import labels_sidecar, write_recording  # noqa: E402
from dynmm_edge.io.realsense import read_recording  # noqa: E402
from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld  # noqa: E402


def test_db3_round_trip_bit_exact(tmp_path):
    w = SyntheticWorld(SynthConfig(width=48, height=36, seed=11))
    frames = [f.to_frame() for f in w.sequence(10, motion="walk")]
    out = tmp_path / "rec.db3"
    assert write_recording(out, frames, fps=30) == 10
    assert out.is_file() and labels_sidecar(out).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.db3", "rec.db3.labels.npz"]  # no temp left
    with np.load(labels_sidecar(out)) as z:
        assert z["frame_numbers"].dtype == np.int64 and list(z["frame_numbers"]) == list(range(1, 11))
        assert z["labels"].shape == (10, 36, 48) and z["labels"].dtype == np.uint8
    back = read_recording(out)
    assert [f.frame_id for f in back] == list(range(1, 11))  # each frame exactly once
    for a, b in zip(frames, back):
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_array_equal(a.labels, b.labels)
        assert b.depth_scale_m == pytest.approx(0.001, rel=1e-6)
        np.testing.assert_allclose(b.intrinsics, a.intrinsics, rtol=1e-5)
    assert back[3].timestamp_s == pytest.approx(0.1, abs=1e-3)


def test_db3_depth_units_and_no_labels(tmp_path):
    w = SyntheticWorld(SynthConfig(width=32, height=24, seed=2))
    frames = []
    for i in range(8):
        f = w.frame(i).to_frame()
        f.depth_scale_m, f.labels = 0.0001, None
        frames.append(f)
    out = tmp_path / "d405.db3"
    write_recording(out, frames)
    assert not labels_sidecar(out).exists()
    back = read_recording(out)
    assert len(back) == 8 and back[0].depth_scale_m == pytest.approx(0.0001, rel=1e-5)
    assert back[0].labels is None


def test_db3_bad_inputs(tmp_path):
    f = SyntheticWorld(SynthConfig(width=16, height=12)).frame(0).to_frame()
    with pytest.raises(DataError, match=".db3"):
        write_recording(tmp_path / "x.bag", [f])
    with pytest.raises(DataError, match="no frames"):
        write_recording(tmp_path / "x.db3", [])
    g = SyntheticWorld(SynthConfig(width=20, height=12)).frame(1).to_frame()
    with pytest.raises(DataError, match="size"):
        write_recording(tmp_path / "y.db3", [f, g])
    assert not (tmp_path / "y.db3").exists()
    with pytest.raises(DataError, match="missing.db3 does not exist"):
        read_recording(tmp_path / "missing.db3")

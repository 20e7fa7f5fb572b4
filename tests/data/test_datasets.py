import numpy as np
import pytest

from dynmm_edge._lazy import available
from dynmm_edge.errors import DataError
from dynmm_edge.types import Frame

pytestmark = pytest.mark.skipif(not available("cv2"), reason="opencv-python not installed")

from dynmm_edge.data.datasets import DirectoryDataset, sunrgbd_native_to_mm, write_nyuv2_layout  # noqa: E402
from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld  # noqa: E402


@pytest.fixture(scope="module")
def frames():
    w = SyntheticWorld(SynthConfig(width=40, height=30, hard_fraction=0.5, seed=7))
    return [w.frame(i) for i in range(4)]


def _png(path, img):
    import cv2
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


def test_nyuv2_round_trip(tmp_path, frames):
    frames[1].labels[0, :5] = 255  # void survives the 0 = void on-disk convention
    assert write_nyuv2_layout(tmp_path, "train", frames) == 4
    for sub in ("rgb", "depth", "depth_raw", "semantic_40"):
        assert sorted(p.name for p in (tmp_path / "train" / sub).iterdir()) == [f"{i:04d}.png" for i in range(4)]
    assert not list((tmp_path / "train" / "rgb").glob(".*"))  # no temp files left
    ds = DirectoryDataset(tmp_path, "train", layout="nyuv2", num_classes=8)
    assert len(ds) == 4
    for i, f in enumerate(frames):
        g = ds[i]
        assert isinstance(g, Frame) and g.depth_scale_m == 0.001
        np.testing.assert_array_equal(g.rgb, f.rgb)
        np.testing.assert_array_equal(g.depth, f.depth)
        np.testing.assert_array_equal(g.labels, f.labels)
    assert (ds[1].labels[0, :5] == 255).all()
    assert (ds[0].depth == 0).any()  # holes kept (depth == depth_raw)
    raw = DirectoryDataset(tmp_path, "train", depth_dir="depth_raw")
    np.testing.assert_array_equal(raw[2].depth, frames[2].depth)
    assert len(list(ds)) == 4 and ds[-1].frame_id == 3


def test_sunrgbd_native_depth_conversion(tmp_path):
    mm = np.array([[0, 1000], [2500, 8191]], np.uint16)
    assert np.array_equal(sunrgbd_native_to_mm(mm << 3), mm)
    _png(tmp_path / "test" / "rgb" / "a.png", np.zeros((2, 2, 3), np.uint8))
    _png(tmp_path / "test" / "depth" / "a.png", (mm << 3).astype(np.uint16))
    np.testing.assert_array_equal(DirectoryDataset(tmp_path, "test", layout="sunrgbd")[0].depth, mm)
    np.testing.assert_array_equal(DirectoryDataset(tmp_path, "test", layout="sunrgbd",
                                                   sunrgbd_depth="mm")[0].depth, mm << 3)


def test_pairs_layout_by_stem_with_jpg(tmp_path):
    rgb = np.full((6, 8, 3), (10, 200, 30), np.uint8)
    _png(tmp_path / "rgb" / "b.png", rgb[:, :, ::-1])
    _png(tmp_path / "rgb" / "a.jpg", rgb[:, :, ::-1])
    _png(tmp_path / "depth" / "a.png", np.full((6, 8), 1234, np.uint16))
    _png(tmp_path / "depth" / "b.png", np.full((6, 8), 4321, np.uint16))
    _png(tmp_path / "labels" / "a.png", np.full((6, 8), 2, np.uint8))
    _png(tmp_path / "labels" / "b.png", np.full((6, 8), 255, np.uint8))
    ds = DirectoryDataset(tmp_path, layout="pairs", num_classes=3, depth_scale_m=0.0001)
    assert [ds[i].meta["stem"] for i in range(2)] == ["a", "b"]
    assert ds[0].depth[0, 0] == 1234 and ds[1].depth[0, 0] == 4321 and ds[0].depth_scale_m == 0.0001
    assert (ds[0].labels == 2).all() and (ds[1].labels == 255).all()
    np.testing.assert_array_equal(ds[1].rgb, rgb)
    assert np.abs(ds[0].rgb.astype(int) - rgb).max() < 8  # jpg, lossy


def test_errors_name_the_file(tmp_path, frames):
    with pytest.raises(DataError, match="no such directory"):
        DirectoryDataset(tmp_path, "train")
    (tmp_path / "train" / "rgb").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        DirectoryDataset(tmp_path, "train")
    write_nyuv2_layout(tmp_path, "train", frames[:2])
    d1 = tmp_path / "train" / "depth" / "0001.png"
    d1.unlink()
    with pytest.raises(DataError, match="0001.png: depth file missing"):
        DirectoryDataset(tmp_path, "train")
    write_nyuv2_layout(tmp_path, "train", frames[:2])
    # size mismatch rgb/depth
    _png(tmp_path / "train" / "depth" / "0001.png", np.zeros((10, 10), np.uint16))
    with pytest.raises(DataError, match="depth/0001.png: depth size 10x10 differs"):
        DirectoryDataset(tmp_path, "train")[1]
    write_nyuv2_layout(tmp_path, "train", frames[:2])
    # size mismatch labels
    _png(tmp_path / "train" / "semantic_40" / "0000.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(DataError, match="semantic_40/0000.png: label size"):
        DirectoryDataset(tmp_path, "train")[0]
    write_nyuv2_layout(tmp_path, "train", frames[:2])
    # label values >= num_classes (stored 9 -> class 8)
    _png(tmp_path / "train" / "semantic_40" / "0000.png", np.full((30, 40), 9, np.uint8))
    ds = DirectoryDataset(tmp_path, "train", num_classes=8)
    with pytest.raises(DataError, match="0000.png: label value 8 >= num_classes 8"):
        ds[0]
    assert DirectoryDataset(tmp_path, "train")[0].labels.max() == 8  # no check without num_classes
    # unreadable image
    (tmp_path / "train" / "rgb" / "0001.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="rgb/0001.png: unreadable"):
        DirectoryDataset(tmp_path, "train")[1]
    # 3-channel depth
    write_nyuv2_layout(tmp_path, "train", frames[:2])
    _png(tmp_path / "train" / "depth" / "0000.png", np.zeros((30, 40, 3), np.uint8))
    with pytest.raises(DataError, match="single-channel"):
        DirectoryDataset(tmp_path, "train")[0]
    with pytest.raises(ValueError, match="layout"):
        DirectoryDataset(tmp_path, "train", layout="kitti")

import numpy as np
import pytest

from dynmm_edge.data import preprocess as P
from dynmm_edge.data.preprocess import (PreprocessConfig, preprocess, preprocess_batch, resize_labels,
                                        resize_nearest)
from dynmm_edge.errors import DataError


def _cfg(**kw):
    base = dict(height=2, width=3, depth_mean=1000.0, depth_std=500.0)
    base.update(kw)
    return PreprocessConfig(**base)


def test_rgb_values_and_layout():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 255
    rgb[0, 1] = (0, 128, 64)
    r, d = preprocess(rgb, np.full((2, 3), 1000, np.uint16), 0.001, _cfg())
    assert r.shape == (1, 3, 2, 3) and r.dtype == np.float32 and r.flags["C_CONTIGUOUS"]
    assert d.shape == (1, 1, 2, 3) and d.dtype == np.float32
    assert r[0, 0, 0, 0] == pytest.approx((1.0 - 0.485) / 0.229, abs=1e-5)
    assert r[0, 1, 0, 0] == pytest.approx((0.0 - 0.456) / 0.224, abs=1e-5)
    assert r[0, 1, 0, 1] == pytest.approx((128 / 255 - 0.456) / 0.224, abs=1e-5)
    assert r[0, 2, 0, 1] == pytest.approx((64 / 255 - 0.406) / 0.225, abs=1e-5)
    assert np.all(d == 0.0)  # depth == mean


def test_depth_normalisation_and_invalid_policy():
    depth = np.array([[0, 1000, 1500], [2000, 500, 0]], np.uint16)
    rgb = np.zeros((2, 3, 3), np.uint8)
    _, d = preprocess(rgb, depth, 0.001, _cfg(invalid_depth="raw"))
    np.testing.assert_allclose(d[0, 0], [[0, 0, 1], [2, -1, 0]], atol=1e-6)
    _, k = preprocess(rgb, depth, 0.001, _cfg(invalid_depth="keep"))
    np.testing.assert_allclose(k[0, 0], [[-2, 0, 1], [2, -1, -2]], atol=1e-6)


def test_float_depth_nan_inf_negative_are_invalid():
    depth = np.array([[np.nan, np.inf, -3.0], [1.0, 2.0, -np.inf]], np.float32)  # metres
    _, d = preprocess(np.zeros((2, 3, 3), np.uint8), depth, 1.0, _cfg())
    np.testing.assert_allclose(d[0, 0], [[0, 0, 0], [0, 2, 0]], atol=1e-6)
    assert np.isfinite(d).all()


def test_unit_conversion_d405_scale():
    # D405: 0.0001 m per count -> 15000 counts = 1.5 m = 1500 mm
    depth = np.full((2, 3), 15000, np.uint16)
    _, d = preprocess(np.zeros((2, 3, 3), np.uint8), depth, 0.0001, _cfg())
    np.testing.assert_allclose(d, 1.0, atol=1e-6)
    # stats expressed in metres instead of millimetres give the same answer
    _, dm = preprocess(np.zeros((2, 3, 3), np.uint8), depth, 0.0001,
                       _cfg(depth_unit_m=1.0, depth_mean=1.0, depth_std=0.5))
    np.testing.assert_allclose(dm, 1.0, atol=1e-6)


def test_all_zero_and_missing_depth_are_legal():
    rgb = np.zeros((4, 6, 3), np.uint8)
    _, d = preprocess(rgb, np.zeros((4, 6), np.uint16), 0.001, _cfg())
    assert np.all(d == 0)
    _, d2 = preprocess(rgb, None, 0.001, _cfg())
    assert d2.shape == (1, 1, 2, 3) and np.all(d2 == 0)


def test_resize_nearest_depth_and_bilinear_rgb():
    depth = np.arange(16, dtype=np.uint16).reshape(4, 4) + 1000
    rgb = np.zeros((4, 4, 3), np.uint8)
    _, d = preprocess(rgb, depth, 0.001, _cfg(height=2, width=2, depth_mean=0.0, depth_std=1.0))
    # half-pixel centres: rows/cols 1 and 3
    np.testing.assert_array_equal(d[0, 0], [[1005, 1007], [1013, 1015]])
    ramp = np.tile(np.array([0, 255], np.uint8)[None, :, None], (2, 1, 3))
    out = P._resize_bilinear_np(ramp, 2, 4)
    np.testing.assert_allclose(out[0, :, 0], [0, 63.75, 191.25, 255], atol=1e-4)


def test_numpy_bilinear_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for h, w in ((20, 30), (64, 96), (37, 20)):
        ref = cv2.resize(img.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(P._resize_bilinear_np(img, h, w), ref, atol=1e-3)


def test_resize_labels_nearest_keeps_ids():
    lab = np.array([[0, 1], [2, 255]], np.uint8)
    up = resize_labels(lab, 4, 4)
    assert up.dtype == np.uint8 and set(np.unique(up)) == {0, 1, 2, 255}
    np.testing.assert_array_equal(up[:2, :2], 0)
    np.testing.assert_array_equal(resize_labels(up, 2, 2), lab)
    np.testing.assert_array_equal(resize_nearest(lab, 2, 2), lab)
    with pytest.raises(DataError):
        resize_labels(np.zeros((2, 2, 1), np.uint8), 4, 4)


def test_bad_inputs_raise_dataerror_naming_frame():
    cfg = _cfg()
    with pytest.raises(DataError, match="frame 7"):
        preprocess(np.zeros((2, 3), np.uint8), None, 0.001, cfg, frame_id=7)
    with pytest.raises(DataError, match="uint8"):
        preprocess(np.zeros((2, 3, 3), np.float32), None, 0.001, cfg)
    with pytest.raises(DataError, match="2-D"):
        preprocess(np.zeros((2, 3, 3), np.uint8), np.zeros((2, 3, 1), np.uint16), 0.001, cfg, frame_id=3)
    with pytest.raises(DataError, match="sizes differ.*frame 9"):
        preprocess(np.zeros((2, 3, 3), np.uint8), np.zeros((3, 3), np.uint16), 0.001, cfg, frame_id=9)
    with pytest.raises(DataError, match="depth_scale_m"):
        preprocess(np.zeros((2, 3, 3), np.uint8), np.zeros((2, 3), np.uint16), 0.0, cfg)


def test_batch_matches_single():
    rng = np.random.default_rng(1)
    rgbs = [rng.integers(0, 256, (8, 12, 3), dtype=np.uint8) for _ in range(3)]
    depths = [rng.integers(0, 4000, (8, 12)).astype(np.uint16) for _ in range(3)]
    cfg = _cfg(height=4, width=6)
    rb, db = preprocess_batch(rgbs, depths, 0.001, cfg)
    assert rb.shape == (3, 3, 4, 6) and db.shape == (3, 1, 4, 6)
    for i in range(3):
        r, d = preprocess(rgbs[i], depths[i], 0.001, cfg)
        np.testing.assert_array_equal(rb[i], r[0])
        np.testing.assert_array_equal(db[i], d[0])
    with pytest.raises(DataError):
        preprocess_batch(rgbs, depths[:2], 0.001, cfg)


def test_config_roundtrip_and_validation():
    cfg = PreprocessConfig(height=240, width=320, depth_mean=2931.67, depth_std=1269.42, invalid_depth="keep")
    d = cfg.to_dict()
    assert d["rgb_mean"] == [0.485, 0.456, 0.406]
    assert PreprocessConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match="unknown"):
        PreprocessConfig.from_dict({**d, "depth_men": 1.0})
    with pytest.raises(ValueError, match="invalid_depth"):
        PreprocessConfig(invalid_depth="fill")
    with pytest.raises(ValueError, match="depth_std"):
        PreprocessConfig(depth_std=0.0)
    with pytest.raises(ValueError, match="height"):
        PreprocessConfig(height=0)
    with pytest.raises(Exception):
        cfg.height = 3  # frozen

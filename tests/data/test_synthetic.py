import numpy as np
import pytest

from dynmm_edge.data.synthetic import (CLASS_NAMES, DEPTH_MEAN_MM, DEPTH_STD_MM, KINDS, PALETTE, SynthConfig,
                                       SyntheticWorld)
from dynmm_edge.types import Frame


@pytest.fixture(scope="module")
def world():
    return SyntheticWorld(SynthConfig(width=96, height=72, hard_fraction=0.5, seed=3))


def test_constants():
    assert CLASS_NAMES == ("floor", "wall", "ceiling", "table", "cabinet", "box", "ball", "pillar")
    assert len(PALETTE) == 8 and all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in PALETTE)
    assert 1000 < DEPTH_MEAN_MM < 6000 and 300 < DEPTH_STD_MM < 3000


def test_shapes_dtypes_and_ranges(world):
    f = world.frame(0)
    assert f.rgb.shape == (72, 96, 3) and f.rgb.dtype == np.uint8
    assert f.depth.shape == (72, 96) and f.depth.dtype == np.uint16
    assert f.labels.shape == (72, 96) and f.labels.dtype == np.uint8
    assert f.labels.max() < len(CLASS_NAMES)
    fx, fy, cx, cy = f.intrinsics
    assert fx == fy > 0 and cx == pytest.approx(47.5) and cy == pytest.approx(35.5)
    assert f.kind in KINDS


def test_deterministic_per_seed_and_index(world):
    a = world.frame(5)
    b = SyntheticWorld(SynthConfig(width=96, height=72, hard_fraction=0.5, seed=3)).frame(5)
    for k in ("rgb", "depth", "labels"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    c = SyntheticWorld(SynthConfig(width=96, height=72, hard_fraction=0.5, seed=4)).frame(5)
    assert not np.array_equal(a.rgb, c.rgb)
    assert not np.array_equal(a.rgb, world.frame(6).rgb)


@pytest.mark.parametrize("hard,dark_share", [(0.3, 0.5), (0.0, 0.5), (1.0, 0.25)])
def test_kind_mix(hard, dark_share):
    w = SyntheticWorld(SynthConfig(width=16, height=12, hard_fraction=hard, dark_share=dark_share, seed=1))
    kinds = [w.kind_of(i) for i in range(200)]
    n_cam, n_dark = kinds.count("camouflaged"), kinds.count("dark")
    assert abs((n_cam + n_dark) / 200 - hard) <= 0.02
    assert abs(n_dark / 200 - hard * dark_share) <= 0.02
    assert w.frame(7).kind == kinds[7]


def test_depth_holes_and_sensor_model(world):
    frames = [world.frame(i) for i in range(6)]
    holes = np.mean([(f.depth == 0).mean() for f in frames])
    assert 0.003 < holes < 0.4
    f = frames[0]
    valid = f.depth > 0
    # depth in mm close to ground truth (noise ~ k z^2), quantised to integers
    err = np.abs(f.depth[valid].astype(np.float64) - f.depth_true_mm[valid])
    assert np.median(err) < 0.01 * f.depth_true_mm[valid].mean() + 2
    # holes concentrate on depth edges: pixels next to a big jump are far more often invalid
    z = f.depth_true_mm
    jump = np.zeros_like(valid)
    jump[:, 1:] |= np.abs(np.diff(z, axis=1)) > 0.05 * z[:, 1:]
    if jump.sum() > 10:
        assert (~valid[jump]).mean() > 5 * (~valid[~jump]).mean()


def test_far_depth_beyond_range_is_hole():
    w = SyntheticWorld(SynthConfig(width=48, height=36, max_range_m=2.0, seed=2))
    f = w.frame(0)
    assert np.all(f.depth[f.depth_true_mm > 2000] == 0)
    assert f.depth.max() <= 2000 * 1.05


def _straddle(f, mask):
    e = mask[:, :-1] != mask[:, 1:]
    r = f.rgb.astype(np.float64)
    rd = np.abs(r[:, :-1] - r[:, 1:]).mean(-1)[e]
    zd = np.abs(f.depth_true_mm[:, :-1] - f.depth_true_mm[:, 1:])[e]
    return rd.mean(), np.median(zd)


def test_camouflaged_objects_invisible_in_rgb_but_not_in_depth():
    w = SyntheticWorld(SynthConfig(width=160, height=120, hard_fraction=0.5, dark_share=0.0, seed=0))
    cam_rgb, cam_z, easy_rgb, n_cam = [], [], [], 0
    for i in range(24):
        f = w.frame(i)
        if f.kind == "camouflaged":
            n_cam += 1
            if f.camo_mask.sum() < 20:
                continue
            assert not np.isin(f.labels[f.camo_mask], [0, 1, 2]).any()  # object labels, not room
            r, z = _straddle(f, f.camo_mask)
            cam_rgb.append(r)
            cam_z.append(z)
        else:
            easy_rgb.append(_straddle(f, f.labels >= 3)[0])
    assert n_cam >= 8 and len(cam_rgb) >= 0.7 * n_cam
    assert np.median(cam_rgb) < 8.0           # across the boundary RGB changes by noise only
    assert np.median(easy_rgb) > 20.0         # easy objects stand out
    assert np.median(cam_z) > 100.0           # ... while depth jumps


def test_dark_frames_are_dark_with_depth_intact():
    cfg = SynthConfig(width=64, height=48, hard_fraction=1.0, dark_share=1.0, seed=5)
    dark = SyntheticWorld(cfg).frame(2)
    assert dark.kind == "dark"
    assert dark.rgb.mean() < 60
    assert (dark.depth > 0).mean() > 0.6


def test_to_frame():
    f = SyntheticWorld(SynthConfig(width=32, height=24)).frame(3)
    fr = f.to_frame()
    assert isinstance(fr, Frame) and fr.frame_id == 3 and fr.depth_scale_m == 0.001
    assert fr.meta["kind"] == f.kind and fr.labels is f.labels and fr.intrinsics == f.intrinsics


def test_sequence_walk_is_smooth_and_still_stands():
    w = SyntheticWorld(SynthConfig(width=64, height=48, seed=2))
    seq = w.sequence(12, start=10, motion="walk")
    assert len(seq) == 12
    frames = list(seq)
    assert [f.index for f in frames] == list(range(10, 22))
    step = np.mean([(frames[i].labels != frames[i + 1].labels).mean() for i in range(11)])
    far = (frames[0].labels != frames[-1].labels).mean()
    assert step < 0.05 and far > step  # small change per frame, accumulating
    np.testing.assert_array_equal(seq[3].rgb, frames[3].rgb)  # random access == iteration
    still = w.sequence(4, start=10, motion="still")
    assert all(np.array_equal(still[0].labels, s.labels) for s in still)
    assert not np.array_equal(still[0].depth, still[1].depth)  # sensor noise still varies
    with pytest.raises(ValueError):
        w.sequence(3, motion="fly")
    with pytest.raises(IndexError):
        seq[12]


def test_config_validation():
    with pytest.raises(ValueError):
        SynthConfig(hard_fraction=1.5)
    with pytest.raises(ValueError):
        SynthConfig(width=4)

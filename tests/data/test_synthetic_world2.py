"""World 2: depth failures with physical causes, RGB-rich frames, the kind mix, and world 1 unchanged."""
import numpy as np
import pytest

from dynmm_edge.data.synthetic import (DEFAULT_KIND_MIX, KINDS, SynthConfig, SyntheticWorld, parse_kind_mix)


def _first(world, kind, limit=300):
    for i in range(limit):
        if world.kind_of(i) == kind:
            return world.frame(i)
    raise AssertionError(f"no {kind} frame in {limit}")


def _only(kind, **kw):
    return SyntheticWorld(SynthConfig(width=96, height=72, hard_fraction=0.0, seed=kw.pop("seed", 2),
                                      kind_mix=((kind, 1.0),), **kw))


def test_kind_mix_matches_configured_fractions():
    cfg = SynthConfig(width=16, height=12, hard_fraction=0.3, seed=1)
    w = SyntheticWorld(cfg)
    kinds = [w.kind_of(i) for i in range(1000)]
    fr = cfg.kind_fractions()
    assert abs(sum(fr.values()) - 1) < 1e-9 and set(fr) == set(KINDS)
    for k in KINDS:
        assert abs(kinds.count(k) / 1000 - fr[k]) < 0.01, k


def test_world1_has_only_the_original_kinds_and_ignores_the_mix():
    a = SyntheticWorld(SynthConfig(width=32, height=24, hard_fraction=0.3, seed=4, world=1))
    b = SyntheticWorld(SynthConfig(width=32, height=24, hard_fraction=0.3, seed=4, world=1,
                                   kind_mix=(("glass", 1.0),)))
    assert {a.kind_of(i) for i in range(200)} == {"easy", "camouflaged", "dark"}
    for i in range(4):
        fa, fb = a.frame(i), b.frame(i)
        assert np.array_equal(fa.rgb, fb.rgb) and np.array_equal(fa.depth, fb.depth)


def test_world2_deterministic_per_seed():
    cfg = SynthConfig(width=48, height=36, seed=9)
    for i in range(9):
        f, g = SyntheticWorld(cfg).frame(i), SyntheticWorld(cfg).frame(i)
        assert f.kind == g.kind and np.array_equal(f.rgb, g.rgb) and np.array_equal(f.depth, g.depth)


def test_sunlit_saturates_rgb_and_punches_depth_holes():
    f = _only("sunlit").frame(0)
    g = _only("easy").frame(0)  # same scene and pose, no sun
    assert f.kind == "sunlit"
    bright = f.rgb.mean(2) > g.rgb.mean(2) + 40
    assert bright.mean() > 0.05
    assert (f.depth[bright] == 0).mean() > 0.5 > (g.depth[bright] == 0).mean()


def test_glass_reports_the_depth_behind_it():
    w = _only("glass", seed=3)
    for i in range(20):
        f = w.frame(i)
        m = f.labels >= 3  # objects
        behind = (f.depth > 0) & (f.depth.astype(np.float32) > f.depth_true_mm + 300) & m
        if behind.sum() > 30:
            return
    raise AssertionError("no glass frame with depth behind the object")


def test_black_surfaces_and_far_walls_drop_out():
    blk = _only("black").frame(1)
    obj = blk.labels >= 3
    assert (blk.depth[obj] == 0).mean() > 0.3
    far = _only("far").frame(1)
    beyond = far.depth_true_mm > 7000
    assert beyond.mean() > 0.05 and (far.depth[beyond] == 0).all()


def test_motion_smears_depth_across_edges():
    f = _only("motion").frame(0)
    valid = f.depth > 0
    err = np.abs(f.depth.astype(np.float32) - f.depth_true_mm)[valid]
    g = _only("easy").frame(0)
    err_static = np.abs(g.depth.astype(np.float32) - g.depth_true_mm)[g.depth > 0]
    assert np.percentile(err, 99) > 2 * np.percentile(err_static, 99)


def test_parse_kind_mix_and_validation():
    assert parse_kind_mix("easy=0.5, glass:0.5") == (("easy", 0.5), ("glass", 0.5))
    with pytest.raises(ValueError, match="KIND=WEIGHT"):
        parse_kind_mix("easy=x")
    with pytest.raises(ValueError, match="unknown kind 'dark'"):
        SynthConfig(kind_mix=(("dark", 1.0),))
    with pytest.raises(ValueError, match="finite"):
        SynthConfig(kind_mix=(("easy", float("nan")),))
    with pytest.raises(ValueError, match="world"):
        SynthConfig(world=3)
    assert sum(w for _, w in DEFAULT_KIND_MIX) == pytest.approx(1.0)


def test_synth_cmd_shows_the_mix(capsys):
    import argparse

    from dynmm_edge.apps import synth_cmd
    ap = argparse.ArgumentParser()
    synth_cmd.add_parser(ap.add_subparsers())
    args = ap.parse_args(["synth", "--kinds", "--hard-fraction", "0.5"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "camouflaged   25.0 %" in out and "sunlit" in out
    args = ap.parse_args(["synth", "--kinds", "bogus=1"])
    assert args.func(args) == 2
    assert "unknown kind 'bogus'" in capsys.readouterr().err

"""runtime.tiles: numpy gather/scatter, window shifting at borders, buckets, entropy ranking."""
import numpy as np
import pytest

from dynmm_edge.tiles import (TileError, TileGrid, bucket_for, default_buckets, gather, scatter,
                                      tile_entropy, top_share, window_origins)


def test_grid_rejects_tile_that_does_not_divide():
    with pytest.raises(TileError, match="does not divide the feature grid"):
        TileGrid(48, 192, 256)
    with pytest.raises(TileError, match="does not divide"):
        TileGrid(64, 160, 256)  # 160 px is not a whole number of 64-px tiles
    assert TileGrid(64, 192, 256).count == 12


def test_gather_scatter_roundtrip_no_halo():
    g = TileGrid(32, 64, 96)  # 2 x 3 tiles
    fmap = np.arange(1 * 2 * 32 * 48, dtype=np.float32).reshape(1, 2, 32, 48)  # stride 2 map
    ids = np.array([0, 4])
    win = gather(fmap, g, ids, stride=2)
    assert win.shape == (2, 2, 16, 16)
    np.testing.assert_array_equal(win[1], fmap[0, :, 16:32, 16:32])
    back = scatter(win, g, ids, in_stride=2, out_stride=2)
    expect = np.zeros_like(fmap)
    expect[..., 0:16, 0:16] = fmap[..., 0:16, 0:16]
    expect[..., 16:32, 16:32] = fmap[..., 16:32, 16:32]
    np.testing.assert_array_equal(back, expect)


def test_halo_windows_shift_inside_the_map():
    g = TileGrid(32, 64, 128)  # 2 x 4 tiles; stride-4 map is 16 x 32, tile 8 px
    org = window_origins(g, [0, 5, 7], stride=4, halo=4)
    # tile 0 at (0,0): window shifted to the border; tile 5 (row 1, col 1): tile (8,8) -> window y clamped to 0
    assert org.tolist() == [[0, 0, 0, 0], [0, 4, 8, 8], [0, 16, 8, 24]]


def test_scatter_crops_the_tile_out_of_a_halo_window():
    g = TileGrid(32, 64, 128)
    fmap = np.random.default_rng(0).normal(size=(1, 3, 16, 32)).astype(np.float32)
    ids = np.array([5])
    win = gather(fmap, g, ids, stride=4, halo=4)
    assert win.shape == (1, 3, 16, 16)
    back = scatter(win, g, ids, in_stride=4, out_stride=4, halo=4)  # identity "stage"
    np.testing.assert_array_equal(back[..., 8:16, 8:16], fmap[..., 8:16, 8:16])
    assert np.count_nonzero(back[..., :8, :]) == 0


def test_bucket_and_share_helpers():
    assert default_buckets(48) == (1, 2, 4, 8, 16, 32, 48)
    assert bucket_for(5, (1, 2, 4, 8)) == 8
    with pytest.raises(TileError, match="exceed"):
        bucket_for(9, (1, 2, 4, 8))
    m = top_share(np.array([[0.1, 0.9], [0.5, 0.2]]), 0.5)
    assert m.tolist() == [[False, True], [True, False]]
    assert top_share(np.zeros((2, 2)), 0.0).sum() == 0


def test_tile_entropy_ranks_uncertain_tiles_first():
    g = TileGrid(32, 32, 64)
    probs = np.zeros((2, 32, 64))
    probs[0, :, :32] = 1.0          # certain tile
    probs[:, :, 32:] = 0.5          # uncertain tile
    ent = tile_entropy(probs, g)
    assert ent.shape == (1, 2) and ent[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert ent[0, 1] == pytest.approx(np.log(2))

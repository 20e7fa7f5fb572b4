"""Tile gather / scatter (region-level depth gating) on numpy arrays, or on torch tensors where they live
(a GPU backend's feature maps stay on the device: only the index arithmetic runs on the host). This
module imports numpy only; torch is touched only when a torch tensor is passed in.

A tile grid cuts the input into T x T px tiles (T a multiple of 32, so every tile is whole at every
encoder stride down to 1/32). A depth segment that runs per tile sees, for each active tile, a window
of its input map: the tile plus `halo` pixels on each side at that map's resolution, shifted (not
padded) to stay inside the map, so the window's image-border padding is the dense network's padding.
The segment's output window is cropped back to the tile and scattered into a zero map.

The same window arithmetic is used by the eager model (dynmm_edge.model.region), the exported
runtime (Session) and the MAC count, so the three agree by construction.
"""
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from dynmm_edge.errors import DynMMError


class TileError(DynMMError, ValueError):
    """A tile size, mask or window that does not fit the feature grid."""


@dataclass(frozen=True)
class TileGrid:
    """Tiles of `tile` px over a height x width input."""

    tile: int
    height: int
    width: int

    def __post_init__(self):
        for name in ("tile", "height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise TileError(f"tile grid: {name}={value!r} must be a positive integer")
        if self.tile % 32 or self.height % self.tile or self.width % self.tile:
            raise TileError(f"tile size {self.tile} px does not divide the feature grid: it must be a multiple "
                            f"of 32 px (the 1/32 map) that divides the input {self.width}x{self.height}")

    @property
    def rows(self) -> int:
        return self.height // self.tile

    @property
    def cols(self) -> int:
        return self.width // self.tile

    @property
    def count(self) -> int:
        return self.rows * self.cols

    def mask_of(self, ids: Sequence[int]) -> np.ndarray:
        """bool [rows, cols] mask with the given flat tile ids set."""
        m = np.zeros(self.count, dtype=bool)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.count):
            raise TileError(f"tile id out of range 0..{self.count - 1}")
        m[ids] = True
        return m.reshape(self.rows, self.cols)

    def ids_of(self, mask) -> np.ndarray:
        """Flat ids (row-major) of the active tiles of a [rows, cols] mask."""
        mask = np.asarray(mask)
        if mask.shape[-2:] != (self.rows, self.cols):
            raise TileError(f"tile mask shape {mask.shape} does not match the {self.rows}x{self.cols} tile grid")
        return np.flatnonzero(mask.reshape(self.rows, self.cols) > 0.5)


def window_layout(grid: TileGrid, stride: int, halo: int) -> Tuple[int, int, int, int]:
    """(map_h, map_w, window_h, window_w) of a map at `stride` with `halo` px around each tile."""
    if grid.tile % stride:
        raise TileError(f"tile {grid.tile} px is not whole at stride {stride}")
    h, w, t = grid.height // stride, grid.width // stride, grid.tile // stride
    return h, w, min(t + 2 * halo, h), min(t + 2 * halo, w)


def window_origins(grid: TileGrid, ids, stride: int, halo: int) -> np.ndarray:
    """[N, 4] int (window_y0, window_x0, tile_y0, tile_x0) in pixels of the map at `stride`.

    Windows are shifted inside the map; the tile's offset in its window is tile - window."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    mh, mw, wh, ww = window_layout(grid, stride, halo)
    t = grid.tile // stride
    ty = (ids // grid.cols) * t
    tx = (ids % grid.cols) * t
    wy = np.clip(ty - halo, 0, mh - wh)
    wx = np.clip(tx - halo, 0, mw - ww)
    return np.stack([wy, wx, ty, tx], axis=1)


def is_tensor(x) -> bool:
    """A torch tensor (checked by type, so numpy-only callers never import torch)."""
    return type(x).__module__.startswith("torch")


def zeros_like_map(like, shape):
    """Zeros of `shape` with `like`'s dtype, on `like`'s device for a tensor."""
    return like.new_zeros(tuple(shape)) if is_tensor(like) else np.zeros(shape, dtype=like.dtype)


def _permute(x, axes):
    return x.permute(*axes) if is_tensor(x) else x.transpose(axes)


def _index(ids, like):
    """Tile ids as an index for `like` (a device tensor wants its index on the same device)."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if is_tensor(like):
        import torch
        return torch.from_numpy(ids).to(like.device)
    return ids


def select_tiles(mask, grid: TileGrid, a, b):
    """Where the bool [rows, cols] `mask` is set, `a`, else `b` (two [1, C, h, w] maps of one stride; numpy
    or torch, the mask repeated to the map's resolution where the maps live)."""
    t = grid.tile // (grid.height // a.shape[2])
    m = np.repeat(np.repeat(np.asarray(mask, bool), t, axis=0), t, axis=1)[None, None]
    if is_tensor(a):
        import torch
        return torch.where(torch.from_numpy(m).to(a.device), a, b)
    return np.where(m, a, b)


def gather(fmap, grid: TileGrid, ids, stride: int, halo: int = 0):
    """[1, C, H, W] map -> [N, C, wh, ww] windows of the active tiles (N may be 0); numpy or torch."""
    fmap = fmap if is_tensor(fmap) else np.asarray(fmap)
    mh, mw, wh, ww = window_layout(grid, stride, halo)
    if fmap.ndim != 4 or fmap.shape[0] != 1 or tuple(fmap.shape[2:]) != (mh, mw):
        raise TileError(f"gather: map shape {tuple(fmap.shape)} is not [1, C, {mh}, {mw}] (stride {stride})")
    if halo == 0:  # windows are the tiles: one reshape and one indexed copy, no per-tile loop
        c, t = fmap.shape[1], grid.tile // stride
        tiles = _permute(fmap.reshape(c, grid.rows, t, grid.cols, t), (1, 3, 0, 2, 4)).reshape(grid.count, c, t, t)
        return tiles[_index(ids, fmap)]
    org = window_origins(grid, ids, stride, halo)
    out = zeros_like_map(fmap, (len(org), fmap.shape[1], wh, ww))
    for n, (wy, wx, _, _) in enumerate(org):
        out[n] = fmap[0, :, wy:wy + wh, wx:wx + ww]
    return out


def scatter(windows, grid: TileGrid, ids, in_stride: int, out_stride: int, halo: int = 0, out=None):
    """Crop each output window (computed from gather(..., in_stride, halo)) to its tile and place it in a
    zero [1, C, H/out_stride, W/out_stride] map (or into `out`, which is zeroed first); numpy or torch."""
    windows = windows if is_tensor(windows) else np.asarray(windows)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    factor = out_stride // in_stride
    if factor < 1 or out_stride % in_stride:
        raise TileError(f"scatter: out stride {out_stride} is not a multiple of in stride {in_stride}")
    org = window_origins(grid, ids, in_stride, halo)
    t = grid.tile // out_stride
    shape = (1, windows.shape[1], grid.height // out_stride, grid.width // out_stride)
    if windows.shape[0] != len(ids):
        raise TileError(f"scatter: {windows.shape[0]} windows for {len(ids)} active tiles")
    if out is not None and tuple(out.shape) != shape:
        raise TileError(f"scatter: output map {tuple(out.shape)} is not {shape}")
    if halo == 0:  # each window is its tile (at the out stride): one indexed copy and one reshape
        c = shape[1]
        tiles = zeros_like_map(windows, (grid.count, c, t, t))
        tiles[_index(ids, windows)] = windows[:, :, :t, :t]
        full = _permute(tiles.reshape(grid.rows, grid.cols, c, t, t), (2, 0, 3, 1, 4)).reshape(shape)
        if out is None:
            return full
        out[...] = full
        return out
    if out is None:
        out = zeros_like_map(windows, shape)
    else:
        out[...] = 0
    for n, (wy, wx, ty, tx) in enumerate(org):
        oy, ox = (ty - wy) // factor, (tx - wx) // factor
        out[0, :, ty // factor:ty // factor + t, tx // factor:tx // factor + t] = windows[n, :, oy:oy + t, ox:ox + t]
    return out


def bucket_for(n: int, buckets: Sequence[int]) -> int:
    """Smallest bucket >= n (engines are built for a few tile-batch sizes; pad up to it)."""
    for b in sorted(int(b) for b in buckets):
        if b >= n:
            return b
    raise TileError(f"{n} active tiles exceed the largest tile-batch bucket {max(buckets)}")


def default_buckets(count: int) -> Tuple[int, ...]:
    """A small set of tile-batch sizes: powers of two up to the tile count, and the count itself."""
    out, b = [], 1
    while b < count:
        out.append(b)
        b *= 2
    out.append(count)
    return tuple(out)


def tile_batch_range(buckets: Sequence[int], typical_share: float = 0.3) -> Tuple[int, int, int]:
    """(min, opt, max) tile-batch sizes for an engine profile: 1, the bucket of a typical share, all tiles."""
    buckets = sorted(int(b) for b in buckets)
    opt = bucket_for(max(1, int(round(typical_share * buckets[-1]))), buckets)
    return 1, opt, buckets[-1]


def tile_entropy(probs: np.ndarray, grid: TileGrid) -> np.ndarray:
    """Mean per-pixel prediction entropy of each tile: probs [C, H, W] at input resolution -> [rows, cols]."""
    probs = np.asarray(probs, dtype=np.float64)
    ent = -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=0)
    if ent.shape != (grid.height, grid.width):
        raise TileError(f"entropy map {ent.shape} is not {grid.height}x{grid.width}")
    return ent.reshape(grid.rows, grid.tile, grid.cols, grid.tile).mean(axis=(1, 3))


def top_share(scores: np.ndarray, share: float) -> np.ndarray:
    """bool mask of the round(share * count) highest-scoring tiles (at least one when share > 0)."""
    scores = np.asarray(scores, dtype=np.float64)
    flat = scores.reshape(-1)
    k = int(round(float(share) * flat.size))
    if share > 0:
        k = max(k, 1)
    mask = np.zeros(flat.size, dtype=bool)
    if k:
        mask[np.argsort(-flat, kind="stable")[:k]] = True
    return mask.reshape(scores.shape)

"""RGB-D datasets on disk: write the NYUv2 (nicr-scene-analysis-datasets) layout, read several layouts.

Label convention on disk for the 'nyuv2', 'sunrgbd' and 'scannet' layouts follows those datasets:
0 = void and class c is stored as c + 1 (semantic_40 / semantic_37 PNGs). In memory (Frame.labels)
classes are 0-based and void is 255, as everywhere else in the SDK. The 'pairs' layout stores
in-memory labels unchanged (0-based, 255 = void).

PNG IO goes through OpenCV (imported lazily; MissingDependency names the package).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional

import numpy as np

from dynmm_edge import atomic
from dynmm_edge._lazy import require
from dynmm_edge.errors import BadFrame, DataError
from dynmm_edge.types import Frame

LAYOUTS = ("nyuv2", "sunrgbd", "scannet", "pairs")
_IMAGE_EXTS = (".png", ".jpg", ".jpeg")
# layout -> (rgb dir, depth dir, label dir, labels stored with +1 shift / 0 = void)
_DIRS = {
    "nyuv2": ("rgb", "depth", "semantic_40", True),
    "sunrgbd": ("rgb", "depth", "semantic_37", True),
    "scannet": ("rgb", "depth", "semantic_40", True),
    "pairs": ("rgb", "depth", "labels", False),
}


def _cv2():
    return require("cv2", "reading and writing dataset PNGs")


def _imwrite(path: Path, img: np.ndarray) -> None:
    """Encode in memory, then write atomically (no half-written PNG survives a crash)."""
    cv2 = _cv2()
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise DataError(f"could not encode PNG for {path}")
    atomic.write_bytes(path, buf.tobytes())


def _as_frame(f) -> Frame:
    return f.to_frame() if hasattr(f, "to_frame") else f


def write_nyuv2_layout(root, split: str, frames: Iterable, start_index: int = 0) -> int:
    """Write frames (Frame or SynthFrame) as <root>/<split>/{rgb,depth,depth_raw,semantic_40}/NNNN.png.

    rgb 8-bit, depth 16-bit mm. Our frames carry sensor depth with holes, so depth == depth_raw
    (no in-painted version exists). Labels are written with the dataset convention (c + 1, 0 = void).
    Returns the number of frames written.
    """
    cv2 = _cv2()
    base = Path(root) / split
    n = 0
    for k, f in enumerate(frames):
        f = _as_frame(f)
        name = f"{start_index + k:04d}.png"
        if f.rgb.ndim != 3 or f.rgb.shape[2] != 3 or f.rgb.dtype != np.uint8:
            raise DataError(f"frame {f.frame_id}: rgb must be uint8 HxWx3, got {f.rgb.dtype} {f.rgb.shape}")
        _imwrite(base / "rgb" / name, cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR))
        if f.depth is not None:
            if f.depth.shape != f.rgb.shape[:2]:
                raise DataError(f"frame {f.frame_id}: depth {f.depth.shape} and rgb {f.rgb.shape[:2]} sizes differ")
            d = np.asarray(f.depth, np.float64) * (f.depth_scale_m / 0.001)
            d = np.where(np.isfinite(d) & (d > 0), d, 0)
            mm = np.clip(np.round(d), 0, 65535).astype(np.uint16)
            _imwrite(base / "depth" / name, mm)
            _imwrite(base / "depth_raw" / name, mm)
        if f.labels is not None:
            lab = np.asarray(f.labels)
            if lab.shape != f.rgb.shape[:2]:
                raise DataError(f"frame {f.frame_id}: labels {lab.shape} and rgb {f.rgb.shape[:2]} sizes differ")
            if np.any((lab > 253) & (lab != 255)):
                raise DataError(f"frame {f.frame_id}: label values must be < 254 or 255 (void)")
            stored = np.where(lab == 255, 0, lab.astype(np.int32) + 1).astype(np.uint8)
            _imwrite(base / "semantic_40" / name, stored)
        n += 1
    return n


def sunrgbd_native_to_mm(v: np.ndarray) -> np.ndarray:
    """SUN RGB-D's native depth PNGs store millimetres rotated left by 3 bits (so ~mm * 8);
    the SUN toolbox reads them back as a 16-bit rotate right by 3. Exact inverse of that."""
    v = v.astype(np.uint16)
    return ((v >> 3) | (v << 13)).astype(np.uint16)


class DirectoryDataset:
    """Random-access RGB-D frames from a folder.

    layout: 'nyuv2' / 'sunrgbd' / 'scannet' = <root>/<split>/{rgb, depth, semantic_*}/<stem>.png
    ('depth_dir' picks e.g. 'depth_raw'); 'pairs' = <root>/rgb/*.png|jpg + <root>/depth/*.png
    (+ optional <root>/labels/*.png), matched by file stem.
    sunrgbd_depth: 'native' (stored ~mm*8, see sunrgbd_native_to_mm) or 'mm' (already converted).
    depth_scale_m: metres per stored count after conversion (mm -> 0.001; 'pairs' may differ).
    num_classes: when given, labels >= num_classes (except 255 = void) raise DataError.
    """

    def __init__(self, root, split: Optional[str] = "train", layout: str = "nyuv2",
                 num_classes: Optional[int] = None, depth_dir: Optional[str] = None,
                 sunrgbd_depth: str = "native", depth_scale_m: float = 0.001, with_labels: bool = True,
                 allow_8bit_depth: bool = False):
        self.allow_8bit_depth = allow_8bit_depth
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if sunrgbd_depth not in ("native", "mm"):
            raise ValueError(f"sunrgbd_depth must be 'native' or 'mm', got {sunrgbd_depth!r}")
        self.layout, self.num_classes = layout, num_classes
        self.sunrgbd_depth, self.depth_scale_m = sunrgbd_depth, float(depth_scale_m)
        rgb_dir, default_depth, label_dir, self._shifted = _DIRS[layout]
        base = Path(root) if layout == "pairs" or split is None else Path(root) / split
        self.base = base
        rgb_path = base / rgb_dir
        if not rgb_path.is_dir():
            raise DataError(f"{rgb_path}: no such directory (layout {layout!r})")
        self.rgb_files: List[Path] = sorted(p for p in rgb_path.iterdir() if p.suffix.lower() in _IMAGE_EXTS)
        if not self.rgb_files:
            raise DataError(f"{rgb_path}: no images (.png/.jpg) found")
        ddir = base / (depth_dir or default_depth)
        if not ddir.is_dir():
            raise DataError(f"{ddir}: depth directory missing (layout {layout!r})")
        self.depth_files: List[Path] = []
        for p in self.rgb_files:
            d = ddir / (p.stem + ".png")
            if not d.is_file():
                raise DataError(f"{d}: depth file missing for {p}")
            self.depth_files.append(d)
        ldir = base / label_dir
        self.label_files: Optional[List[Path]] = None
        if with_labels and ldir.is_dir():
            self.label_files = []
            for p in self.rgb_files:
                lp = ldir / (p.stem + ".png")
                if not lp.is_file():
                    raise DataError(f"{lp}: label file missing for {p}")
                self.label_files.append(lp)

    def __len__(self) -> int:
        return len(self.rgb_files)

    @staticmethod
    def _read(path: Path, flags, index: int = -1) -> np.ndarray:
        cv2 = _cv2()
        img = cv2.imread(str(path), flags)
        if img is None:  # one bad file, not a bad dataset: the stream may go on (BadFrame)
            raise BadFrame(index, f"{path}: unreadable or not an image (truncated or corrupt file?)")
        return img

    def __getitem__(self, i: int) -> Frame:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} frames in {self.base}")
        i %= len(self)
        cv2 = _cv2()
        rp, dp = self.rgb_files[i], self.depth_files[i]
        bgr = self._read(rp, cv2.IMREAD_UNCHANGED, i)
        if bgr.dtype != np.uint8:
            raise DataError(f"{rp}: rgb must be 8-bit, got {bgr.dtype}")
        if bgr.ndim == 2:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        elif bgr.shape[2] == 4:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
        else:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        depth = self._read(dp, cv2.IMREAD_UNCHANGED, i)
        if depth.ndim != 2 or depth.dtype not in (np.uint16, np.uint8):
            raise DataError(f"{dp}: depth must be a single-channel 16-bit PNG, got {depth.dtype} {depth.shape}")
        if depth.dtype == np.uint8 and not self.allow_8bit_depth:
            raise DataError(f"{dp}: depth is an 8-bit PNG (0-255), which would be read as {self.depth_scale_m * 1000:g} mm "
                            f"per count; save depth as 16-bit PNG in millimetres (e.g. cv2.imwrite(path, "
                            f"depth_mm.astype(numpy.uint16))), or pass ?depth_scale_m=S (metres per 8-bit count) "
                            f"to accept it")
        depth = depth.astype(np.uint16, copy=False)
        if self.layout == "sunrgbd" and self.sunrgbd_depth == "native":
            depth = sunrgbd_native_to_mm(depth)
        if depth.shape != rgb.shape[:2]:
            raise DataError(f"{dp}: depth size {depth.shape[1]}x{depth.shape[0]} differs from "
                            f"rgb {rp.name} {rgb.shape[1]}x{rgb.shape[0]}")
        labels = None
        if self.label_files is not None:
            lp = self.label_files[i]
            lab = self._read(lp, cv2.IMREAD_UNCHANGED, i)
            if lab.ndim != 2 or lab.dtype != np.uint8:
                raise DataError(f"{lp}: labels must be a single-channel 8-bit PNG, got {lab.dtype} {lab.shape}")
            if lab.shape != rgb.shape[:2]:
                raise DataError(f"{lp}: label size {lab.shape[1]}x{lab.shape[0]} differs from "
                                f"rgb {rp.name} {rgb.shape[1]}x{rgb.shape[0]}")
            if self._shifted:
                lab = np.where(lab == 0, 255, lab.astype(np.int16) - 1).astype(np.uint8)
            if self.num_classes is not None:
                bad = (lab >= self.num_classes) & (lab != 255)
                if bad.any():
                    raise DataError(f"{lp}: label value {int(lab[bad].max())} >= num_classes "
                                    f"{self.num_classes} ({int(bad.sum())} pixels)")
            labels = lab
        return Frame(frame_id=i, rgb=rgb, depth=depth, depth_scale_m=self.depth_scale_m, labels=labels,
                     meta={"path": str(rp), "stem": rp.stem, "layout": self.layout})

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

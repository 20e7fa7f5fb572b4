"""Folders of RGB-D images as a FrameSource (NYUv2 layout root or split dir, or rgb/ + depth/ pairs).

Reading and validation (missing depth files, sizes, label shifts) belong to
dynmm_edge.data.datasets.DirectoryDataset; this module only picks the layout and streams frames.
"""
from pathlib import Path
from typing import Optional

from dynmm_edge.errors import BadFrame, DataError
from dynmm_edge.io.base import FrameSource

LAYOUTS = ("auto", "nyuv2", "sunrgbd", "scannet", "pairs")
OPTIONS = {"split": (str, ""), "layout": (str, "auto"), "depth_dir": (str, ""), "depth_scale_m": (float, 0.0),
           "labels": (bool, True)}
_LABEL_DIRS = {"semantic_40": "nyuv2", "semantic_37": "sunrgbd"}


def detect_layout(root: Path, split: str, layout: str):
    """-> (layout, split or None). A split root with several splits and no ?split= is an error
    rather than a silent pick."""
    if layout not in LAYOUTS:
        raise DataError(f"directory source {root}: layout must be one of {LAYOUTS}, got {layout!r}")
    if not root.is_dir():
        raise DataError(f"directory source {root}: no such directory")
    if split:
        if layout == "pairs":
            raise DataError(f"directory source {root}: split= does not apply to the 'pairs' layout")
        if not (root / split / "rgb").is_dir():
            have = sorted(p.name for p in root.iterdir() if (p / "rgb").is_dir())
            raise DataError(f"directory source {root}: no split {split!r} with an rgb/ folder; splits found: {have}")
        return ("nyuv2" if layout == "auto" else layout), split
    if (root / "rgb").is_dir():  # a split dir or a plain pairs folder
        if layout != "auto":
            return layout, None
        for d, lay in _LABEL_DIRS.items():
            if (root / d).is_dir():
                return lay, None
        return "pairs", None
    splits = sorted(p.name for p in root.iterdir() if (p / "rgb").is_dir())
    if len(splits) == 1:
        return ("nyuv2" if layout == "auto" else layout), splits[0]
    if splits:
        raise DataError(f"directory source {root}: several splits {splits}; choose one with ?split=NAME")
    raise DataError(f"directory source {root}: no rgb/ folder here or in any sub-folder "
                    f"(expected <root>/<split>/rgb, <root>/rgb + <root>/depth)")


class DirectorySource(FrameSource):
    """Offline, in file-name order; frames carry labels when the layout has them."""

    live = False

    def __init__(self, root, split: str = "", layout: str = "auto", depth_dir: str = "",
                 depth_scale_m: float = 0.0, labels: bool = True):
        """depth_scale_m: metres per depth count; 0 = not given (16-bit millimetres; 8-bit refused)."""
        super().__init__()
        if not depth_scale_m >= 0 or depth_scale_m == float("inf"):
            raise DataError(f"directory source {root}: depth_scale_m must be > 0 (metres per count), got {depth_scale_m}")
        from dynmm_edge.data.datasets import DirectoryDataset
        self.root = Path(root)
        lay, sp = detect_layout(self.root, split, layout)
        self.layout, self.split = lay, sp
        try:
            self.dataset = DirectoryDataset(self.root, split=sp, layout=lay, depth_dir=depth_dir or None,
                                            depth_scale_m=depth_scale_m or 0.001, with_labels=labels,
                                            allow_8bit_depth=depth_scale_m > 0)
        except ValueError as exc:
            raise DataError(f"directory source {self.root}: {exc}") from exc
        self.name = f"dir:{self.root}" + (f"/{sp}" if sp else "")
        self.size: Optional[tuple] = None

    def __len__(self):
        return len(self.dataset)

    def _frames(self):
        for i in range(len(self.dataset)):
            if self._closed:
                return
            try:
                frame = self.dataset[i]
            except BadFrame as bad:
                if not self.yield_bad_frames:
                    raise
                yield bad  # the pipeline skips or stops (--on-bad-frame)
                continue
            if self.size is None:
                self.size = (frame.rgb.shape[1], frame.rgb.shape[0])
            yield frame


def open_directory(target: str, opts: dict) -> DirectorySource:
    return DirectorySource(target, **opts)

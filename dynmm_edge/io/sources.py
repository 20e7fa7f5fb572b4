"""open_source(uri): one string picks the camera, recording, folder or synthetic world.

  realsense://[SERIAL]?width=640&height=480&fps=30&filters=decimation,spatial,temporal,hole_filling&align=color
  rec.db3 | rec.bag | file://rec.db3            (?filters=...&align=auto|color|none&labels=auto|none|PATH)
  DIR | dir://DIR?split=test                    (NYUv2 layout root or split dir, or rgb/ + depth/ pairs)
  synthetic://?frames=100&width=320&height=240&hard_fraction=0.3&seed=0&motion=walk[&live=1&fps=30&world=2]
  rosbag2://BAG?rgb=TOPIC&depth=TOPIC&tolerance_ms=15 | BAG (folder with metadata.yaml) | file.mcap

Unknown schemes and unknown options raise DataError listing the valid ones.
"""
from pathlib import Path
from typing import Callable, Dict, Tuple

from dynmm_edge.errors import DataError
from dynmm_edge.io import directory, realsense, synthetic_source
from dynmm_edge.io.base import FrameSource, parse_uri, resolve_options
from dynmm_edge.io.rosmsg import SOURCE_OPTIONS as ROSBAG2_OPTIONS
from dynmm_edge.io.rosmsg import is_rosbag2_path

RECORDING_EXTS = (".db3", ".bag")


def _open_rosbag2(target, opts):
    from dynmm_edge.io.rosbag2 import open_rosbag2  # rosbags is imported only for rosbag2 sources
    return open_rosbag2(target, opts)


# scheme -> (factory(target, options), option spec)
SOURCES: Dict[str, Tuple[Callable[[str, dict], FrameSource], dict]] = {
    "realsense": (realsense.open_realsense, realsense.REALSENSE_OPTIONS),
    "recording": (realsense.open_playback, realsense.PLAYBACK_OPTIONS),
    "dir": (directory.open_directory, directory.OPTIONS),
    "synthetic": (synthetic_source.open_synthetic, synthetic_source.OPTIONS),
    "rosbag2": (_open_rosbag2, ROSBAG2_OPTIONS),
}
_ALIASES = {"rs": "realsense", "db3": "recording", "bag": "recording", "directory": "dir", "synth": "synthetic"}


def _kind_of_path(target: str, text: str) -> str:
    path = Path(target)
    if is_rosbag2_path(path):
        return "rosbag2"
    if path.suffix.lower() in RECORDING_EXTS:
        return "recording"
    if path.is_dir():
        return "dir"
    if not path.exists():
        raise DataError(f"source {text!r}: no such file or directory")
    raise DataError(f"source {text!r}: cannot read {path.suffix or 'this file'}; expected a .db3/.bag recording, "
                    f"a directory, or one of {valid_schemes()}")


def valid_schemes():
    return sorted(f"{s}://" for s in list(SOURCES) + ["file"])


def open_source(uri, **opts) -> FrameSource:
    """Open a FrameSource; keyword options override the query string (same names)."""
    if isinstance(uri, FrameSource):
        if opts:
            raise DataError(f"options {sorted(opts)} cannot be applied to an already open source")
        return uri
    p = parse_uri(uri)
    scheme = _ALIASES.get(p.scheme, p.scheme)
    target = p.target
    if scheme in ("", "file"):
        if not target:
            raise DataError(f"source {p.text!r}: a path is required")
        scheme = _kind_of_path(target, p.text)
    if scheme not in SOURCES:
        raise DataError(f"unknown source scheme {p.scheme!r} in {p.text!r}; valid: {', '.join(valid_schemes())} "
                        f"or a path to a .db3/.bag file or a directory")
    if scheme in ("recording", "dir", "rosbag2") and not target:
        raise DataError(f"source {p.text!r}: {scheme} needs a path")
    if scheme == "synthetic" and target:
        raise DataError(f"source {p.text!r}: synthetic takes options only (synthetic://?frames=...), not {target!r}")
    factory, spec = SOURCES[scheme]
    options = resolve_options(f"source {p.text!r} ({scheme})", spec, p.query, opts)
    return factory(target, options)

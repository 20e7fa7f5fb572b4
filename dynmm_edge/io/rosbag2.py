"""rosbag2 in and out (MCAP or SQLite3) with the pure-Python `rosbags` library: no ROS needed.

  source: rosbag2://PATH?rgb=TOPIC&depth=TOPIC&tolerance_ms=15&info=1
          PATH is the bag folder (with metadata.yaml) or its .mcap/.db3 file; topics default to the
          first realsense-ros layout present (/camera/camera/... then /camera/...).
  sink:   rosbag2://OUT_DIR?storage=mcap|sqlite3&prefix=/segmentation&overlay=1&resize=1
          PREFIX/labels (mono8, or 16UC1 above 256 classes), PREFIX/overlay (rgb8), PREFIX/status
          (std_msgs/String JSON), each stamped with the input colour header (stamp and frame_id).

Colour and depth are paired by header stamp (dynmm_edge.io.rossync, shared with the ROS 2 node);
unpaired messages are counted and logged. Output bags are assembled in a hidden folder and renamed
into place on close, so an aborted run leaves nothing that looks like a whole bag.
"""
import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from dynmm_edge._lazy import require
from dynmm_edge.errors import DataError
from dynmm_edge.io.base import FrameSource
from dynmm_edge.io.rosmsg import is_rosbag2_path  # noqa: F401 - part of this module's API
from dynmm_edge.io.rosmsg import (CAMERA_INFO, COMPRESSED, DEPTH_TOPICS, IMAGE, IMAGE_TYPES, OUT_PREFIX, RGB_TOPICS,
                                  SINK_OPTIONS, SOURCE_OPTIONS, RosbagsMessages, frame_from_pair,
                                  intrinsics_of, result_messages, stamp_ns)
from dynmm_edge.io.rossync import ApproxTimeSync
from dynmm_edge.io.sinks import Sink

log = logging.getLogger(__name__)
STORAGES = ("mcap", "sqlite3")
# give up early when this many messages per stream arrived and none paired (a long bag would
# otherwise be read to the end before saying so)
_EARLY_NO_PAIR = 64


def _rosbag2():
    return require("rosbags.rosbag2", "rosbag2 files (pip install 'dynmm-edge[ros]')")


def _corrupt(path, exc, where="") -> DataError:
    p = Path(path)
    files = sorted(f.name for f in p.iterdir() if f.suffix in (".mcap", ".db3")) if p.is_dir() else []
    named = f" (storage file {', '.join(files)})" if files else ""
    return DataError(f"rosbag2 {path}{named}: cannot read{where} ({type(exc).__name__}: {exc}); the bag may be "
                     f"truncated or corrupt (a recorder killed mid-write leaves MCAP without its index: "
                     f"`mcap recover` salvages it)")


def _open_reader(path: Path):
    rb = _rosbag2()
    if not path.exists():
        raise DataError(f"rosbag2 {path}: no such file or directory")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise DataError(f"rosbag2 {path}: folder has no metadata.yaml (not a rosbag2 folder; "
                        f"pass the .mcap/.db3 file itself if the metadata was lost)")
    try:
        reader = rb.Reader(path)
        reader.open()
    except Exception as exc:
        raise _corrupt(path, exc) from exc
    return reader


def _pick_topic(path, topics: Dict[str, str], wanted: str, defaults: Sequence[str], what: str, key: str) -> str:
    images = sorted(t for t, ty in topics.items() if ty in IMAGE_TYPES)
    listing = f"image topics in the bag: {', '.join(images) or '(none)'}; all topics: {', '.join(sorted(topics))}"
    if wanted:
        if wanted not in topics:
            raise DataError(f"rosbag2 {path}: no {what} topic {wanted!r}; {listing}")
        chosen = wanted
    else:
        found = [t for t in defaults if t in topics]
        if not found:
            raise DataError(f"rosbag2 {path}: no {what} topic found (looked for {', '.join(defaults[:2])}); "
                            f"{listing}; pick one with ?{key}=TOPIC")
        chosen = found[0]
    if topics[chosen] not in IMAGE_TYPES:
        raise DataError(f"rosbag2 {path}: {what} topic {chosen} has type {topics[chosen]}; "
                        f"expected {IMAGE} or {COMPRESSED}")
    return chosen


def _info_topic(image_topic: str, topics: Dict[str, str]) -> Optional[str]:
    """CameraInfo beside an image topic: /ns/color/image_raw[/compressed] -> /ns/color/camera_info."""
    parts = image_topic.split("/")
    while parts and parts[-1] in ("compressed", "compressedDepth", "image_raw", "image_rect_raw", "image"):
        parts.pop()
    cand = "/".join(parts + ["camera_info"])
    return cand if topics.get(cand) == CAMERA_INFO else None


class Rosbag2Source(FrameSource):
    """Colour + aligned depth from a rosbag2 bag, paired by stamp; offline (every pair, in order).

    After iteration `sync` holds the pairing counts (paired, dropped per stream)."""

    live = False

    def __init__(self, path, rgb: str = "", depth: str = "", tolerance_ms: float = 15.0, info: bool = True):
        super().__init__()
        if not tolerance_ms >= 0:
            raise DataError(f"rosbag2 source: tolerance_ms must be >= 0, got {tolerance_ms}")
        self.path = Path(path)
        self.name = f"rosbag2:{self.path}"
        self.tolerance_ns = int(round(tolerance_ms * 1e6))
        self._msgs = RosbagsMessages()
        self._reader = _open_reader(self.path)
        try:
            self.topics = {t: i.msgtype for t, i in self._reader.topics.items()}
            self.rgb_topic = _pick_topic(self.path, self.topics, rgb, RGB_TOPICS, "colour", "rgb")
            self.depth_topic = _pick_topic(self.path, self.topics, depth, DEPTH_TOPICS, "depth", "depth")
            self.info_topic = _info_topic(self.rgb_topic, self.topics) if info else None
            counts = {t: i.msgcount for t, i in self._reader.topics.items()}
            if counts.get(self.rgb_topic, 0) == 0:
                raise DataError(f"rosbag2 {self.path}: colour topic {self.rgb_topic} has no messages")
            if counts.get(self.depth_topic, 0) == 0:
                raise DataError(f"rosbag2 {self.path}: depth topic {self.depth_topic} has no messages")
        except BaseException:
            self._close()
            raise
        self.expected = {"rgb": counts[self.rgb_topic], "depth": counts[self.depth_topic]}
        self.sync: Optional[ApproxTimeSync] = None
        self.intrinsics = self._first_intrinsics()

    def _first_intrinsics(self):
        """The colour camera's K from its first CameraInfo, so frame 0 carries it too."""
        if self.info_topic is None:
            return None
        cons = [c for c in self._reader.connections if c.topic == self.info_topic]
        try:
            for con, _, raw in self._reader.messages(connections=cons):
                return intrinsics_of(self._decode(con, raw))
        except DataError:
            raise
        except Exception as exc:
            raise _corrupt(self.path, exc, f" topic {self.info_topic}") from exc
        return None

    def _close(self):
        try:
            self._reader.close()
        except Exception:  # closing a reader that failed half-way must not hide the first error
            pass

    def _decode(self, con, raw):
        try:
            return self._msgs.deserialize(raw, con.msgtype)
        except Exception as exc:
            raise _corrupt(self.path, exc, f" a {con.msgtype} message on topic {con.topic}") from exc

    def _messages(self):
        wanted = {self.rgb_topic, self.depth_topic, self.info_topic} - {None}
        cons = [c for c in self._reader.connections if c.topic in wanted]
        it = self._reader.messages(connections=cons)
        while True:
            try:
                con, _, raw = next(it)
            except StopIteration:
                return
            except Exception as exc:
                raise _corrupt(self.path, exc) from exc
            yield con, self._decode(con, raw)

    def _frames(self):
        sync = self.sync = ApproxTimeSync(self.tolerance_ns, queue_size=64)
        types = (self.topics[self.rgb_topic], self.topics[self.depth_topic])
        topics = (self.rgb_topic, self.depth_topic)
        index = 0
        for con, msg in self._messages():
            if con.topic == self.info_topic:
                self.intrinsics = intrinsics_of(msg)  # follows a change of resolution mid-bag
                continue
            stream = "rgb" if con.topic == self.rgb_topic else "depth"
            for pair in sync.push(stream, stamp_ns(msg), msg):
                yield frame_from_pair(index, pair.rgb, pair.depth, types, topics, self.intrinsics)
                index += 1
            if sync.paired == 0 and min(sync.received.values()) >= _EARLY_NO_PAIR:
                raise self._no_pairs(sync)
        sync.finish()
        if sync.paired == 0:
            raise self._no_pairs(sync)
        short = {s: (sync.received[s], n) for s, n in self.expected.items() if sync.received[s] < n}
        if short:
            raise DataError(f"rosbag2 {self.path}: the bag ended early: " + ", ".join(
                f"{s} topic {topics[0] if s == 'rgb' else topics[1]} delivered {got} of {n} messages"
                for s, (got, n) in short.items()) + "; it may be truncated")
        level = logging.WARNING if sum(sync.dropped.values()) else logging.INFO
        log.log(level, "rosbag2 %s: %s", self.path, sync.describe())

    def _no_pairs(self, sync: ApproxTimeSync) -> DataError:
        r, d = sync.ranges.get("rgb", [0, 0]), sync.ranges.get("depth", [0, 0])
        gap = "n/a" if sync.closest_ns is None else f"{sync.closest_ns / 1e6:.1f} ms"
        return DataError(f"rosbag2 {self.path}: no colour message on {self.rgb_topic} pairs with a depth message on "
                         f"{self.depth_topic} within {self.tolerance_ns / 1e6:g} ms (colour stamps {r[0] / 1e9:.3f}.."
                         f"{r[1] / 1e9:.3f} s, depth {d[0] / 1e9:.3f}..{d[1] / 1e9:.3f} s, closest gap {gap}); "
                         f"check the topics or raise ?tolerance_ms=")


def open_rosbag2(target: str, opts: dict) -> Rosbag2Source:
    return Rosbag2Source(target, **opts)


# ----------------------------------------------------------------------------------------- writing
class AtomicBag:
    """A rosbag2 writer that assembles the bag in a hidden sibling folder and renames it into
    place on close(); abort() (or an exception) removes it. Never overwrites an existing path."""

    def __init__(self, out_dir, storage: str = "mcap", what: str = "rosbag2 output"):
        rb = _rosbag2()
        if storage not in STORAGES:
            raise DataError(f"{what} {out_dir}: storage must be one of {STORAGES}, got {storage!r}")
        self.out = Path(out_dir)
        if self.out.exists():
            raise DataError(f"{what} {self.out}: already exists; rosbag2 output never overwrites (pick a new folder)")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._tmp_root = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".partial", dir=self.out.parent))
        self._tmp = self._tmp_root / self.out.name  # the storage file is named after this folder
        plugin = rb.StoragePlugin.MCAP if storage == "mcap" else rb.StoragePlugin.SQLITE3
        self.msgs = RosbagsMessages()
        self.what = what
        # SQLite connections refuse use from a second thread, and a sink is opened on one thread and
        # written on the pipeline's output thread: every writer call runs on this one thread
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rosbag2-writer")
        self._writer = rb.Writer(self._tmp, version=8, storage_plugin=plugin)
        try:
            self._call(self._writer.open)
        except BaseException:
            self._io.shutdown()
            shutil.rmtree(self._tmp_root, ignore_errors=True)
            raise
        self._cons: Dict[str, object] = {}
        self.counts: Dict[str, int] = {}
        self._done = False

    def _call(self, fn, *args, **kw):
        return self._io.submit(fn, *args, **kw).result()

    def write(self, topic: str, msg, log_ns: int) -> None:
        con = self._cons.get(topic)
        if con is None:
            con = self._cons[topic] = self._call(self._writer.add_connection, topic, msg.__msgtype__,
                                                 typestore=self.msgs.store)
        self._call(self._writer.write, con, int(log_ns), self.msgs.serialize(msg))
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def close(self) -> Path:
        if self._done:
            return self.out
        self._done = True
        try:
            self._call(self._writer.close)
            self._io.shutdown()
            for f in self._tmp.iterdir():
                with open(f, "rb+") as fh:
                    os.fsync(fh.fileno())
            os.rename(self._tmp, self.out)  # fails rather than replace a folder that appeared meanwhile
        except BaseException:
            self._io.shutdown()
            shutil.rmtree(self._tmp_root, ignore_errors=True)
            raise
        shutil.rmtree(self._tmp_root, ignore_errors=True)
        return self.out

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._call(self._writer.close)
        except Exception:  # the partial bag is discarded either way
            pass
        self._io.shutdown()
        shutil.rmtree(self._tmp_root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


class Rosbag2Sink(Sink):
    """Labels, overlay and status per Result into a new bag, stamped like the input frames."""

    OPTIONS = SINK_OPTIONS

    def __init__(self, out_dir, palette=None, class_names=None, alpha=0.5, storage="mcap", prefix=OUT_PREFIX,
                 overlay=True, resize=True):
        super().__init__()
        self.name = f"rosbag2:{out_dir}"
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.palette = palette
        self.num_classes = len(class_names) if class_names else 256
        self.alpha, self.with_overlay, self.resize = float(alpha), bool(overlay), bool(resize)
        self.bag = AtomicBag(out_dir, storage, what="rosbag2 sink")

    def _write(self, result):
        msgs = result_messages(result, self.bag.msgs, self.palette, self.num_classes, self.alpha,
                               self.with_overlay, self.resize)
        ns = stamp_ns(msgs["labels"]) or self.frames_written + 1  # no input stamp: keep log order
        for key, msg in msgs.items():
            self.bag.write(f"{self.prefix}/{key}", msg, ns)

    def _close(self):
        self.bag.close()

    def abort(self):
        if not self._closed:
            self._closed = True
            self.bag.abort()


def open_rosbag2_sink(target, common, opts) -> Rosbag2Sink:
    return Rosbag2Sink(target, **common, **opts)


def write_camera_bag(out_dir, frames: Iterable, fps: float = 30.0, storage: str = "mcap",
                     namespace: str = "/camera/camera", start_ns: int = 1_700_000_000_000_000_000,
                     rgb_encoding: str = "rgb8", depth_encoding: str = "16UC1", depth_offset_ns: int = 0,
                     frame_id: str = "camera_color_optical_frame") -> int:
    """Write frames (Frame or SynthFrame) as realsense-ros would publish them: NS/color/image_raw,
    NS/aligned_depth_to_color/image_raw (16UC1 mm or 32FC1 m) and both camera_info topics.
    Stamps start_ns + i/fps (depth shifted by depth_offset_ns, for tests). Returns frames written."""
    if fps <= 0:
        raise DataError(f"rosbag2 output {out_dir}: fps must be > 0, got {fps}")
    if rgb_encoding not in ("rgb8", "bgr8") or depth_encoding not in ("16UC1", "32FC1"):
        raise DataError(f"rosbag2 output {out_dir}: encodings must be rgb8|bgr8 and 16UC1|32FC1")
    ns = "/" + namespace.strip("/")
    n = 0
    with AtomicBag(out_dir, storage, what="rosbag2 output") as bag:
        m = bag.msgs
        for i, f in enumerate(frames):
            rgb, depth_m = _rgb_and_metres(f, out_dir, i)
            t = start_ns + int(round(i * 1e9 / fps))
            h, w = rgb.shape[:2]
            img = rgb[..., ::-1] if rgb_encoding == "bgr8" else rgb
            depth = (np.rint(depth_m * 1000.0).clip(0, 65535).astype(np.uint16) if depth_encoding == "16UC1"
                     else np.where(depth_m > 0, depth_m, np.nan).astype(np.float32))
            intr = f.intrinsics or (float(w), float(w), w / 2.0, h / 2.0)
            for topic in (f"{ns}/color/camera_info", f"{ns}/aligned_depth_to_color/camera_info"):
                bag.write(topic, m.camera_info(t, frame_id, w, h, intr), t)
            bag.write(f"{ns}/color/image_raw", m.image(t, frame_id, img, rgb_encoding), t)
            bag.write(f"{ns}/aligned_depth_to_color/image_raw",
                      m.image(t + depth_offset_ns, frame_id, depth, depth_encoding), t + depth_offset_ns)
            n += 1
        if n == 0:
            raise DataError(f"rosbag2 output {out_dir}: no frames to write")
    return n


def _rgb_and_metres(f, where, i) -> Tuple[np.ndarray, np.ndarray]:
    if f.depth is None:
        raise DataError(f"rosbag2 output {where}: frame {i} has no depth")
    scale = float(getattr(f, "depth_scale_m", 0.001))
    return np.asarray(f.rgb, np.uint8), np.asarray(f.depth, np.float64) * scale


__all__ = ["Rosbag2Source", "Rosbag2Sink", "AtomicBag", "write_camera_bag", "is_rosbag2_path", "open_rosbag2",
           "open_rosbag2_sink", "SOURCE_OPTIONS", "SINK_OPTIONS"]

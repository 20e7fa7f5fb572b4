"""ROS 2 image messages <-> numpy, and the vocabulary (topics, encodings, options) shared by the
rosbag2 source and sink and the `dynmm-edge ros2` node.

Messages are duck-typed (header.stamp.sec/nanosec, header.frame_id, height, width, encoding, step,
is_bigendian, data; CompressedImage: format, data), so one code path reads the dataclasses of the
`rosbags` library and the messages of rclpy alike. Imports numpy only; cv2 only to decode a
CompressedImage.
"""
import json
import sys
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from dynmm_edge.errors import DataError
from dynmm_edge.types import Frame, Result
from dynmm_edge.viz.overlay import as_palette, overlay, resize_nearest

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
STRING = "std_msgs/msg/String"
DIAGNOSTICS = "diagnostic_msgs/msg/DiagnosticArray"
IMAGE_TYPES = (IMAGE, COMPRESSED)

# realsense-ros topic layouts, newest first (wrapper 4.x nests camera_name under the namespace)
RGB_TOPICS = ("/camera/camera/color/image_raw", "/camera/color/image_raw",
              "/camera/camera/color/image_raw/compressed", "/camera/color/image_raw/compressed")
DEPTH_TOPICS = ("/camera/camera/aligned_depth_to_color/image_raw", "/camera/aligned_depth_to_color/image_raw",
                "/camera/camera/aligned_depth_to_color/image_raw/compressedDepth",
                "/camera/aligned_depth_to_color/image_raw/compressedDepth")
OUT_PREFIX = "/segmentation"


def is_rosbag2_path(path) -> bool:
    """A rosbag2 folder (metadata.yaml beside .mcap/.db3 files) or a bare .mcap file."""
    p = Path(path)
    return p.suffix.lower() == ".mcap" or (p.is_dir() and (p / "metadata.yaml").is_file())

# colour encoding -> (channels, order); depth encoding -> (dtype, metres per count)
COLOR_ENCODINGS = {"rgb8": (3, "rgb"), "bgr8": (3, "bgr"), "rgba8": (4, "rgb"), "bgra8": (4, "bgr")}
DEPTH_ENCODINGS = {"16UC1": (np.uint16, 0.001), "mono16": (np.uint16, 0.001), "32FC1": (np.float32, 1.0)}

SOURCE_OPTIONS = {"rgb": (str, ""), "depth": (str, ""), "tolerance_ms": (float, 15.0), "info": (bool, True)}
SINK_OPTIONS = {"storage": (str, "mcap"), "prefix": (str, OUT_PREFIX), "overlay": (bool, True),
                "resize": (bool, True)}


def stamp_ns(msg) -> int:
    """Header stamp of a message as integer nanoseconds (exact; floats lose ns after ~104 days)."""
    st = msg.header.stamp
    return int(st.sec) * 1_000_000_000 + int(st.nanosec)


def split_ns(ns: int) -> Tuple[int, int]:
    return int(ns) // 1_000_000_000, int(ns) % 1_000_000_000


def _bytes_of(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).reshape(-1)
    try:
        return np.frombuffer(data, np.uint8)  # bytes, memoryview, array.array (rclpy)
    except TypeError:
        return np.asarray(data, np.uint8).reshape(-1)  # a plain list


def _plane(msg, what: str, bytes_per_px: int) -> np.ndarray:
    """(height, width*bytes_per_px) uint8 view honouring `step` (rows may be padded)."""
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    buf = _bytes_of(msg.data)
    if h <= 0 or w <= 0:
        raise DataError(f"{what}: empty image ({w}x{h})")
    if step < w * bytes_per_px:
        raise DataError(f"{what}: step {step} is smaller than width {w} x {bytes_per_px} bytes")
    if buf.size < step * h:
        raise DataError(f"{what}: truncated image data ({buf.size} bytes, {w}x{h} {msg.encoding} "
                        f"with step {step} needs {step * h})")
    return buf[: step * h].reshape(h, step)[:, : w * bytes_per_px]


def image_to_rgb(msg, what: str) -> np.ndarray:
    """sensor_msgs/Image (rgb8/bgr8/rgba8/bgra8) -> uint8 HxWx3 RGB (a copy)."""
    enc = str(msg.encoding)
    if enc not in COLOR_ENCODINGS:
        raise DataError(f"{what}: unsupported colour encoding {enc!r}; supported: {', '.join(COLOR_ENCODINGS)}")
    ch, order = COLOR_ENCODINGS[enc]
    img = _plane(msg, what, ch).reshape(int(msg.height), int(msg.width), ch)[..., :3]
    return np.ascontiguousarray(img[..., ::-1] if order == "bgr" else img)


def image_to_depth(msg, what: str) -> Tuple[np.ndarray, float]:
    """sensor_msgs/Image depth -> (HxW array, metres per count): 16UC1/mono16 in mm, 32FC1 in metres."""
    enc = str(msg.encoding)
    if enc not in DEPTH_ENCODINGS:
        raise DataError(f"{what}: unsupported depth encoding {enc!r}; supported: {', '.join(DEPTH_ENCODINGS)}")
    dtype, scale = DEPTH_ENCODINGS[enc]
    dt = np.dtype(dtype).newbyteorder(">" if int(msg.is_bigendian) else "<")
    plane = _plane(msg, what, dt.itemsize)
    depth = np.ascontiguousarray(plane).view(dt).reshape(int(msg.height), int(msg.width)).astype(dtype)
    if depth.dtype == np.float32:  # NaN / inf mark invalid in 32FC1; the runtime uses 0
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(0)).astype(np.float32)
    return depth, scale


def _cv2(what):
    from dynmm_edge._lazy import require
    return require("cv2", f"decoding CompressedImage on {what}")


def compressed_to_rgb(msg, what: str) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png) -> uint8 HxWx3 RGB."""
    cv2 = _cv2(what)
    img = cv2.imdecode(_bytes_of(msg.data), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{what}: cannot decode CompressedImage (format {msg.format!r})")
    return np.ascontiguousarray(img[..., ::-1])


def compressed_to_depth(msg, what: str) -> Tuple[np.ndarray, float]:
    """compressed_depth_image_transport: '16UC1; compressedDepth png' = 12-byte header + 16-bit PNG (mm).

    32FC1 compressedDepth stores quantised inverse depth: not supported (publish raw 16UC1)."""
    fmt = str(msg.format)
    if "compressedDepth" not in fmt or not fmt.startswith(("16UC1", "mono16")):
        raise DataError(f"{what}: unsupported compressed depth format {fmt!r}; supported: '16UC1; compressedDepth png'")
    cv2 = _cv2(what)
    buf = _bytes_of(msg.data)
    depth = cv2.imdecode(buf[12:], cv2.IMREAD_UNCHANGED) if buf.size > 12 else None
    if depth is None or depth.dtype != np.uint16 or depth.ndim != 2:
        raise DataError(f"{what}: cannot decode compressedDepth PNG (format {fmt!r})")
    return depth, 0.001


def to_rgb(msg, msgtype: str, what: str) -> np.ndarray:
    return compressed_to_rgb(msg, what) if msgtype == COMPRESSED else image_to_rgb(msg, what)


def to_depth(msg, msgtype: str, what: str) -> Tuple[np.ndarray, float]:
    return compressed_to_depth(msg, what) if msgtype == COMPRESSED else image_to_depth(msg, what)


def intrinsics_of(info) -> Tuple[float, float, float, float]:
    """CameraInfo K (row-major 3x3) -> (fx, fy, cx, cy)."""
    k = [float(v) for v in np.asarray(info.k, dtype=np.float64).reshape(-1)]
    return (k[0], k[4], k[2], k[5])


def frame_from_pair(index: int, rgb_msg, depth_msg, types: Tuple[str, str], topics: Tuple[str, str],
                    intrinsics=None) -> Frame:
    """One colour + aligned depth message pair -> Frame; the colour header's stamp and frame_id
    travel with it (Frame.stamp_ns, Frame.sensor_frame), the depth's in meta."""
    rgb = to_rgb(rgb_msg, types[0], f"topic {topics[0]}")
    depth, scale = to_depth(depth_msg, types[1], f"topic {topics[1]}")
    if depth.shape != rgb.shape[:2]:
        raise DataError(f"topic {topics[1]}: depth is {depth.shape[1]}x{depth.shape[0]} but colour on {topics[0]} is "
                        f"{rgb.shape[1]}x{rgb.shape[0]}; use the depth aligned to colour (align_depth.enable:=true)")
    ns = stamp_ns(rgb_msg)
    return Frame(frame_id=index, rgb=rgb, depth=depth, depth_scale_m=scale, timestamp_s=ns / 1e9,
                 intrinsics=intrinsics, stamp_ns=ns, sensor_frame=str(rgb_msg.header.frame_id),
                 meta={"depth_stamp_ns": stamp_ns(depth_msg), "depth_frame": str(depth_msg.header.frame_id)})


# ------------------------------------------------------------------------------------ outgoing
def image_fields(array: np.ndarray, encoding: str) -> Dict[str, object]:
    """Fields of a sensor_msgs/Image holding `array` (little-endian, unpadded rows)."""
    a = np.ascontiguousarray(array)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and sys.byteorder == "big"):
        a = a.astype(a.dtype.newbyteorder("<"))
    h, w = a.shape[:2]
    return {"height": h, "width": w, "encoding": encoding, "is_bigendian": 0,
            "step": int(a.strides[0]), "data": a.reshape(-1).view(np.uint8)}


def labels_encoding(num_classes: int) -> str:
    return "mono8" if num_classes <= 256 else "16UC1"


def labels_array(result: Result, num_classes: int, resize: bool) -> np.ndarray:
    """Labels as uint8 (mono8) or uint16 (16UC1), resized (nearest) to the input frame if asked."""
    labels = np.asarray(result.labels)
    if labels.ndim != 2:
        raise DataError(f"labels of frame {result.frame_id} must be HxW, got {labels.shape}")
    enc = labels_encoding(num_classes)
    top = 255 if enc == "mono8" else 65535
    if labels.size and (labels.min() < 0 or labels.max() > top):
        raise DataError(f"labels of frame {result.frame_id} do not fit {enc} (range {labels.min()}..{labels.max()})")
    if resize and result.frame is not None:
        labels = resize_nearest(labels, result.frame.rgb.shape[0], result.frame.rgb.shape[1])
    return labels.astype(np.uint8 if enc == "mono8" else np.uint16)


def status_of(result: Result) -> Dict[str, object]:
    """The per-frame status record (JSON in a std_msgs/String)."""
    rec = {"frame": int(result.frame_id), "path": int(result.path),
           "depth_fraction": round(float(result.depth_fraction), 6),
           "branches_run": list(result.branches_run),
           "times_ms": {k: round(float(v), 3) for k, v in result.times_ms.items()}}
    share = getattr(result, "active_tile_share", None)  # region mode, where the runtime reports it
    if share is not None:
        rec["active_tile_share"] = float(share)
    if result.frame is not None and result.frame.stamp_ns is not None:
        rec["stamp_ns"] = int(result.frame.stamp_ns)
    return rec


def result_stamp(result: Result) -> Tuple[int, str]:
    """(stamp ns, frame_id) for the outgoing headers: the input's, so outputs line up with it."""
    f = result.frame
    if f is None:
        return 0, ""
    ns = f.stamp_ns if f.stamp_ns is not None else int(round(f.timestamp_s * 1e9))
    return int(ns), f.sensor_frame


def result_messages(result: Result, factory, palette, num_classes: int, alpha: float = 0.5,
                    with_overlay: bool = True, resize: bool = True) -> Dict[str, object]:
    """Result -> {'labels': Image, 'overlay': Image, 'status': String} built by `factory`
    (rosbags or rclpy message classes), stamped with the input frame's header."""
    ns, frame_id = result_stamp(result)
    labels = labels_array(result, num_classes, resize)
    out = {"labels": factory.image(ns, frame_id, labels, labels_encoding(num_classes))}
    if with_overlay and result.frame is not None:
        img = overlay(result.frame.rgb, labels, as_palette(palette), alpha)
        out["overlay"] = factory.image(ns, frame_id, img, "rgb8")
    out["status"] = factory.string(json.dumps(status_of(result), allow_nan=False))
    return out


class RosbagsMessages:
    """Builds messages with the `rosbags` typestore (bags and tests; no ROS installation)."""

    def __init__(self, typestore=None):
        if typestore is None:
            from dynmm_edge._lazy import require
            typesys = require("rosbags.typesys", "rosbag2 files")
            typestore = typesys.get_typestore(typesys.Stores.ROS2_HUMBLE)
        self.store = typestore
        t = typestore.types
        self._Image, self._Header, self._Time = t[IMAGE], t["std_msgs/msg/Header"], t["builtin_interfaces/msg/Time"]
        self._String, self._Info = t[STRING], t[CAMERA_INFO]

    def header(self, ns: int, frame_id: str):
        sec, nsec = split_ns(ns)
        return self._Header(stamp=self._Time(sec=sec, nanosec=nsec), frame_id=frame_id)

    def image(self, ns: int, frame_id: str, array: np.ndarray, encoding: str):
        return self._Image(header=self.header(ns, frame_id), **image_fields(array, encoding))

    def string(self, text: str):
        return self._String(data=text)

    def camera_info(self, ns: int, frame_id: str, width: int, height: int, intrinsics):
        fx, fy, cx, cy = intrinsics
        roi = self.store.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                                    do_rectify=False)
        k = np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], np.float64)
        p = np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0], np.float64)
        return self._Info(header=self.header(ns, frame_id), height=height, width=width, distortion_model="plumb_bob",
                          d=np.zeros(5, np.float64), k=k, r=np.eye(3).reshape(-1), p=p, binning_x=0, binning_y=0,
                          roi=roi)

    def diagnostics(self, ns: int, name: str, level: int, message: str, values: Dict[str, object]):
        t = self.store.types
        kvs = [t["diagnostic_msgs/msg/KeyValue"](key=str(k), value=str(v)) for k, v in values.items()]
        status = t["diagnostic_msgs/msg/DiagnosticStatus"](level=int(level), name=name, message=message,
                                                           hardware_id="", values=kvs)
        return t[DIAGNOSTICS](header=self.header(ns, ""), status=[status])

    def serialize(self, msg) -> bytes:
        return self.store.serialize_cdr(msg, msg.__msgtype__)

    def deserialize(self, raw, msgtype: str):
        return self.store.deserialize_cdr(raw, msgtype)

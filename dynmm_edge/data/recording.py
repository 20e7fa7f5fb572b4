"""RealSense recordings (.db3) made without a camera, plus a labels sidecar.

write_recording pushes frames through pyrealsense2's software_device into rs.recorder, so the file
is a genuine librealsense recording that the io FrameSource (and RealSense Viewer) can play back.
Ground-truth labels cannot live in the recording: they go to `<path>.labels.npz`
(frame_numbers int64 [N], labels uint8 [N,H,W]). dynmm_edge.io.realsense.read_recording reads both back (tests, tools).
"""
from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Iterable, List

import numpy as np

from dynmm_edge import atomic
from dynmm_edge._lazy import require
from dynmm_edge.errors import DataError


def labels_sidecar(path) -> Path:
    return Path(str(path) + ".labels.npz")


def _intrinsics(rs, w, h, K):
    intr = rs.intrinsics()
    intr.width, intr.height = w, h
    if K is None:  # a plausible 69 degree pinhole when the frame carries none
        fx = 0.5 * w / np.tan(np.radians(69.0) / 2)
        K = (fx, fx, (w - 1) / 2.0, (h - 1) / 2.0)
    intr.fx, intr.fy, intr.ppx, intr.ppy = (float(v) for v in K)
    intr.model = rs.distortion.none
    intr.coeffs = [0.0] * 5
    return intr


def _stream(rs, kind, fmt, bpp, uid, w, h, fps, intr):
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid = kind, 0, uid
    vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = w, h, int(fps), bpp, fmt
    vs.intrinsics = intr
    return vs


def write_recording(path, frames: Iterable, fps: int = 30) -> int:
    """Record frames (Frame or SynthFrame, same size, depth required) to `path` (.db3).

    Frame numbers 1..N, timestamps from frame i / fps (ms, hardware clock domain). depth is stored
    as Z16 in the frame's own depth_scale_m (registered as the depth_units option before any frame),
    colour as RGB8. Depth and colour share the camera: identity extrinsics depth->color.
    Returns the number of frames written. Both files appear atomically (temp name + rename).
    """
    rs = require("pyrealsense2", "writing RealSense recordings")
    path = Path(path)
    if path.suffix != ".db3":
        raise DataError(f"{path}: RealSense recordings must end in .db3 (librealsense >= 2.58 writes .db3 only)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.db3")
    numbers: List[int] = []
    labels: List[np.ndarray] = []
    n = 0
    try:
        n = _record(rs, tmp, frames, fps, numbers, labels)
        if n == 0:
            raise DataError(f"{path}: no frames to record")
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise DataError(f"{path}: the recorder wrote nothing")
        if labels:
            if len(labels) != n:
                raise DataError(f"{path}: labels present on {len(labels)} of {n} frames (all or none)")
            with atomic.atomic_path(labels_sidecar(path), suffix=".npz") as t:
                with open(t, "wb") as fh:
                    np.savez_compressed(fh, frame_numbers=np.asarray(numbers, np.int64),
                                        labels=np.stack(labels).astype(np.uint8))
        else:
            try:
                labels_sidecar(path).unlink()  # a stale sidecar must not pair with the new file
            except FileNotFoundError:
                pass
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        for p in tmp.parent.glob(tmp.name + "*"):  # the temp file and any -wal/-shm leftovers
            try:
                p.unlink()
            except FileNotFoundError:
                pass
    return n


def _record(rs, tmp: Path, frames, fps, numbers, labels) -> int:
    """Drive the software device; every rs object is dropped before return so the recorder
    flushes and closes its file (it writes on destruction)."""
    it = iter(frames)
    try:
        first = next(it)
    except StopIteration:
        return 0
    first = first.to_frame() if hasattr(first, "to_frame") else first
    if first.depth is None:
        raise DataError(f"frame {first.frame_id}: a RealSense recording needs depth")
    h, w = first.rgb.shape[:2]
    scale = float(first.depth_scale_m)
    intr = _intrinsics(rs, w, h, first.intrinsics)

    dev = rs.software_device()
    dsens = dev.add_sensor("Depth")
    csens = dev.add_sensor("Color")
    dprof = dsens.add_video_stream(_stream(rs, rs.stream.depth, rs.format.z16, 2, 0, w, h, fps, intr))
    cprof = csens.add_video_stream(_stream(rs, rs.stream.color, rs.format.rgb8, 3, 1, w, h, fps, intr))
    dsens.add_read_only_option(rs.option.depth_units, scale)  # before any frame, or playback loses it
    ext = rs.extrinsics()
    ext.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    ext.translation = [0.0, 0.0, 0.0]
    dprof.register_extrinsics_to(cprof, ext)
    rec = rs.recorder(str(tmp), dev)
    dsens.open(dprof)
    csens.open(cprof)
    sink = rs.frame_queue(64)
    dsens.start(sink)
    csens.start(sink)
    dvp, cvp = dprof.as_video_stream_profile(), cprof.as_video_stream_profile()
    n = 0
    try:
        f = first
        while f is not None:
            f = f.to_frame() if hasattr(f, "to_frame") else f
            num = n + 1
            if f.depth is None or f.rgb.shape[:2] != (h, w) or f.depth.shape != (h, w):
                raise DataError(f"frame {f.frame_id}: every frame needs depth and the first frame's size {w}x{h}")
            if abs(float(f.depth_scale_m) - scale) > 1e-12:
                raise DataError(f"frame {f.frame_id}: depth_scale_m {f.depth_scale_m} differs from the first "
                                f"frame's {scale} (one depth_units per recording)")
            depth = np.ascontiguousarray(f.depth, dtype=np.uint16)
            rgb = np.ascontiguousarray(f.rgb, dtype=np.uint8)
            ts = 1000.0 * (num - 1) / fps
            for sens, prof, pix, bpp in ((dsens, dvp, depth, 2), (csens, cvp, rgb, 3)):
                sf = rs.software_video_frame()
                sf.pixels = pix
                sf.bpp = bpp
                sf.stride = w * bpp
                sf.timestamp = ts
                sf.domain = rs.timestamp_domain.hardware_clock
                sf.frame_number = num
                sf.profile = prof
                sens.on_video_frame(sf)
            numbers.append(num)
            if f.labels is not None:
                labels.append(np.asarray(f.labels, np.uint8))
            n += 1
            while sink.poll_for_frame():  # keep the queue drained; the recorder taps the sensors
                pass
            f = next(it, None)
    finally:
        for s in (dsens, csens):
            try:
                s.stop()
            except RuntimeError:
                pass
            try:
                s.close()
            except RuntimeError:
                pass
        del rec, dev, dsens, csens, dprof, cprof, dvp, cvp, sink
        gc.collect()
    return n

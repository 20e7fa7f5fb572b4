"""Intel RealSense sources: a live camera and .db3/.bag playback (pyrealsense2, imported lazily).

Depth units come from the device's depth sensor (get_depth_scale), never assumed to be mm (the
D405 uses 0.1 mm). Filters run in librealsense's documented order, on EVERY frame (the temporal
filter needs the full history, whether or not the gate later skips the depth encoder).
"""
import atexit
import queue
import threading
import time
import weakref
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from dynmm_edge._lazy import require
from dynmm_edge.errors import DataError
from dynmm_edge.io.base import FrameSource
from dynmm_edge.types import Frame

# names users may ask for (realsense-ros spelling) and the order librealsense documents
FILTERS = ("decimation", "threshold", "spatial", "temporal", "hole_filling")
_ORDER = ("decimation", "threshold", "to_disparity", "spatial", "temporal", "to_depth", "hole_filling")
ALIGN = ("color", "none")


def filter_plan(names: Sequence[str]) -> List[str]:
    """Requested filters -> processing stages in documented order.

    Spatial and temporal filters work in disparity space, so they are wrapped in to_disparity /
    to_depth; the request order does not matter, duplicates and unknown names are errors.
    """
    names = [n.strip().lower().replace("-", "_") for n in names if n and n.strip()]
    unknown = sorted(set(names) - set(FILTERS))
    if unknown:
        raise DataError(f"unknown RealSense filter(s) {unknown}; valid: {', '.join(FILTERS)}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"RealSense filter(s) {dup} requested more than once")
    wanted = set(names)
    if wanted & {"spatial", "temporal"}:
        wanted |= {"to_disparity", "to_depth"}
    return [s for s in _ORDER if s in wanted]


def build_filters(rs, names: Sequence[str]) -> List[Tuple[str, object]]:
    """Instantiate the processing blocks of filter_plan(names) with librealsense defaults."""
    makers = {
        "decimation": lambda: rs.decimation_filter(), "threshold": lambda: rs.threshold_filter(),
        "to_disparity": lambda: rs.disparity_transform(True), "spatial": lambda: rs.spatial_filter(),
        "temporal": lambda: rs.temporal_filter(), "to_depth": lambda: rs.disparity_transform(False),
        "hole_filling": lambda: rs.hole_filling_filter(),
    }
    return [(s, makers[s]()) for s in filter_plan(names)]


def _apply(blocks, frames):
    for _, block in blocks:
        frames = block.process(frames)
    return frames.as_frameset() if frames.is_frameset() else frames


def _intrinsics(vprofile) -> Tuple[float, float, float, float]:
    i = vprofile.get_intrinsics()
    return (float(i.fx), float(i.fy), float(i.ppx), float(i.ppy))


def _same_geometry(rs, depth_vp, color_vp) -> bool:
    """True when depth is already in colour geometry (same size/intrinsics, identity extrinsics):
    aligning would be a costly no-op."""
    if (depth_vp.width(), depth_vp.height()) != (color_vp.width(), color_vp.height()):
        return False
    if not np.allclose(_intrinsics(depth_vp), _intrinsics(color_vp)):
        return False
    try:
        ext = depth_vp.get_extrinsics_to(color_vp)
    except RuntimeError:
        return False
    return np.allclose(ext.rotation, np.eye(3).ravel(), atol=1e-6) and np.allclose(ext.translation, 0, atol=1e-6)


def _depth_scale(device, where: str) -> float:
    try:
        scale = float(device.first_depth_sensor().get_depth_scale())
    except RuntimeError as exc:
        raise DataError(f"{where}: the depth sensor reports no depth units (depth_units option); "
                        f"refusing to guess the depth scale: {exc}") from exc
    if not scale > 0:
        raise DataError(f"{where}: invalid depth scale {scale}")
    return float(f"{scale:.7g}")  # librealsense stores float32: 0.0010000000475 -> 0.001


def _to_arrays(depth_frame, color_frame):
    depth = np.asanyarray(depth_frame.get_data()).copy() if depth_frame else None
    rgb = np.asanyarray(color_frame.get_data()).copy() if color_frame else None
    return depth, rgb


# ----------------------------------------------------------------------------------------- live
class RealSenseSource(FrameSource):
    """Live camera: depth Z16 + colour RGB8, optional filters, depth aligned to colour.

    Frame ids are the colour sensor's frame numbers (kept increasing across reconnects).
    A camera that stops delivering (unplugged, USB reset) raises DataError('camera disconnected')
    unless reconnect=True, which restarts the pipeline up to `retries` times.
    """

    live = True

    def __init__(self, serial: str = "", width: int = 640, height: int = 480, fps: int = 30,
                 filters: Sequence[str] = (), align: str = "color", reconnect: bool = False,
                 retries: int = 3, timeout_ms: int = 5000, rs_module=None):
        super().__init__()
        if align not in ALIGN:
            raise DataError(f"realsense: align must be one of {ALIGN}, got {align!r}")
        if retries < 0 or timeout_ms <= 0:
            raise DataError("realsense: retries must be >= 0 and timeout_ms > 0")
        self.filter_names = filter_plan(filters)  # validate before touching hardware
        self._rs = rs_module or require("pyrealsense2", "RealSense cameras")
        self.serial, self.width, self.height, self.fps = serial, int(width), int(height), int(fps)
        self.align_to = align
        self.reconnect, self.retries, self.timeout_ms = bool(reconnect), int(retries), int(timeout_ms)
        self.size = (self.width, self.height)
        self.name = f"realsense:{serial or 'first'}"
        self.reconnects = 0
        self._pipe = None
        self._last_id = -1
        self._id_offset = 0
        self._start()

    def _find_serial(self) -> str:
        rs = self._rs
        devices = rs.context().query_devices()
        serials = [d.get_info(rs.camera_info.serial_number) for d in devices]
        if not serials:
            raise DataError("realsense: no RealSense device connected (rs.context().query_devices() is empty); "
                            "check the USB cable (USB 3 port), udev rules, and that no other program holds the camera")
        if self.serial and self.serial not in serials:
            raise DataError(f"realsense: no device with serial {self.serial!r}; connected: {serials}")
        return self.serial or serials[0]

    def _start(self):
        rs = self._rs
        serial = self._find_serial()
        pipe, cfg = rs.pipeline(), rs.config()
        cfg.enable_device(serial)
        cfg.enable_stream(rs.stream.depth, self.width, self.height, rs.format.z16, self.fps)
        cfg.enable_stream(rs.stream.color, self.width, self.height, rs.format.rgb8, self.fps)
        try:
            profile = pipe.start(cfg)
        except RuntimeError as exc:
            raise DataError(f"realsense {serial}: cannot start depth+color at {self.width}x{self.height}"
                            f"@{self.fps}: {exc}") from exc
        self.serial = serial
        self.name = f"realsense:{serial}"
        self.depth_scale_m = _depth_scale(profile.get_device(), f"realsense {serial}")
        self._blocks = build_filters(rs, self.filter_names)  # fresh history after a reconnect
        self._align = rs.align(rs.stream.color) if self.align_to == "color" else None
        self._pipe = pipe

    def _stop_pipe(self):
        if self._pipe is not None:
            try:
                self._pipe.stop()
            except RuntimeError:
                pass
            self._pipe = None

    def _wait(self):
        try:
            return self._pipe.wait_for_frames(self.timeout_ms)
        except RuntimeError as exc:
            if not self.reconnect:
                raise DataError(f"realsense {self.serial}: camera disconnected or stalled "
                                f"(no frames for {self.timeout_ms} ms: {exc}); pass reconnect=1 to retry") from exc
            last = exc
        for attempt in range(1, self.retries + 1):
            self._stop_pipe()
            time.sleep(min(2.0, 0.25 * 2 ** (attempt - 1)))
            try:
                self._start()
                fs = self._pipe.wait_for_frames(self.timeout_ms)
                self.reconnects += 1
                return fs
            except (RuntimeError, DataError) as exc:
                last = exc
        raise DataError(f"realsense {self.serial}: camera disconnected; {self.retries} reconnect attempt(s) "
                        f"failed (last error: {last})")

    def _frames(self):
        while not self._closed:
            fs = self._wait()
            fs = _apply(self._blocks, fs)
            if self._align is not None:
                fs = self._align.process(fs)
            d, c = fs.get_depth_frame(), fs.get_color_frame()
            if not d or not c:
                continue  # the syncer may hand out an incomplete set at start-up
            depth, rgb = _to_arrays(d, c)
            fid = self._id_offset + int(c.get_frame_number())
            if fid <= self._last_id:  # counters restart after a reconnect
                self._id_offset += self._last_id + 1 - fid
                fid = self._last_id + 1
            self._last_id = fid
            yield Frame(frame_id=fid, rgb=rgb, depth=depth, depth_scale_m=self.depth_scale_m,
                        timestamp_s=c.get_timestamp() / 1000.0,
                        intrinsics=_intrinsics(c.profile.as_video_stream_profile()),
                        meta={"source": self.name, "depth_frame_number": int(d.get_frame_number()),
                              "filters": list(self.filter_names), "aligned": self._align is not None})

    def _close(self):
        self._stop_pipe()


# ------------------------------------------------------------------------------------- playback
def labels_sidecar(path) -> Path:
    """<file>.db3 -> <file>.db3.labels.npz (written by dynmm_edge.data.recording)."""
    return Path(str(path) + ".labels.npz")


def load_labels_sidecar(path) -> Dict[int, np.ndarray]:
    """frame number -> uint8 labels, validated (names the file and key on any mismatch)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if "frame_numbers" not in z or "labels" not in z:
                raise DataError(f"labels sidecar {path}: needs keys 'frame_numbers' and 'labels', has {sorted(z.files)}")
            numbers, labels = z["frame_numbers"], z["labels"]
    except (OSError, ValueError) as exc:
        raise DataError(f"labels sidecar {path}: cannot read: {exc}") from exc
    if numbers.ndim != 1 or labels.ndim != 3 or len(numbers) != len(labels):
        raise DataError(f"labels sidecar {path}: 'frame_numbers' {numbers.shape} and 'labels' {labels.shape} "
                        f"must be (N,) and (N, H, W)")
    if len(set(numbers.tolist())) != len(numbers):
        raise DataError(f"labels sidecar {path}: 'frame_numbers' has duplicates")
    return {int(n): labels[k].astype(np.uint8, copy=False) for k, n in enumerate(numbers)}


def align_depth_to_color(depth: np.ndarray, depth_scale_m: float, depth_k, color_k, color_size,
                         rotation, translation) -> np.ndarray:
    """Reproject depth into the colour camera (pinhole, distortion ignored, nearest surface wins).

    Used for playback, where frames reach us per sensor and rs.align (which needs a frameset)
    cannot be used. rotation: librealsense's column-major 3x3 list; translation in metres.
    """
    fx, fy, cx, cy = depth_k
    cfx, cfy, ccx, ccy = color_k
    cw, ch = color_size
    v, u = np.nonzero(depth)
    z = depth[v, u].astype(np.float64) * depth_scale_m
    pts = np.stack([(u - cx) / fx * z, (v - cy) / fy * z, z])
    R = np.asarray(rotation, np.float64).reshape(3, 3).T
    q = R @ pts + np.asarray(translation, np.float64).reshape(3, 1)
    out = np.zeros((ch, cw), depth.dtype)
    front = q[2] > 0
    q = q[:, front]
    uc = np.rint(q[0] / q[2] * cfx + ccx).astype(np.int64)
    vc = np.rint(q[1] / q[2] * cfy + ccy).astype(np.int64)
    inside = (uc >= 0) & (uc < cw) & (vc >= 0) & (vc < ch)
    uc, vc, zc = uc[inside], vc[inside], q[2][inside]
    order = np.argsort(-zc, kind="stable")  # far first, so the nearest surface is written last
    counts = np.clip(np.rint(zc[order] / depth_scale_m), 0, np.iinfo(np.uint16).max)
    out[vc[order], uc[order]] = counts.astype(depth.dtype)
    return out


def _close_weak(ref):
    src = ref()
    if src is not None:
        src.close()


class PlaybackSource(FrameSource):
    """.db3 (librealsense >= 2.58 recorder) or .bag recordings, not real-time: every frame once.

    Why not rs.pipeline: its syncer queue drops framesets whenever the consumer is slower than
    the file reader, even in non-real-time mode (seen here under CPU load: frames 1-4 lost, or
    depth 10 paired with colour 1..10). Instead the playback device is paused, set to
    non-real-time, each sensor's callback pushes copies into a small blocking queue (which
    makes the reader wait for us), and only then is playback resumed. Depth and colour are
    matched by frame number; recordings whose streams count independently (real cameras)
    fall back to arrival order (pair_by='auto' decides on the first pair). End of file =
    device status 'stopped' with the queue empty. Labels: sidecar npz by frame number.
    """

    live = False

    def __init__(self, path, filters: Sequence[str] = (), align: str = "auto", labels: str = "auto",
                 pair_by: str = "auto", stall_s: float = 10.0, queue_size: int = 8, rs_module=None):
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"recording {self.path} does not exist")
        if self.path.suffix.lower() not in (".db3", ".bag"):
            raise DataError(f"recording {self.path}: librealsense reads .db3 or .bag files only")
        if align not in ALIGN + ("auto",):
            raise DataError(f"recording {self.path}: align must be one of {ALIGN + ('auto',)}, got {align!r}")
        if pair_by not in ("auto", "frame_number", "arrival"):
            raise DataError(f"recording {self.path}: pair_by must be auto, frame_number or arrival, got {pair_by!r}")
        self.filter_names = filter_plan(filters)
        self._rs = rs_module or require("pyrealsense2", "RealSense recordings")
        self.align_to, self.pair_by, self.stall_s = align, pair_by, float(stall_s)
        self.name = f"recording:{self.path.name}"
        if labels == "auto":
            side = labels_sidecar(self.path)
            self.labels = load_labels_sidecar(side) if side.is_file() else {}
        elif labels in ("", "none"):
            self.labels = {}
        else:
            self.labels = load_labels_sidecar(labels)
        self.unmatched_depth = 0
        self.unmatched_color = 0
        self._queue = queue.Queue(maxsize=max(2, int(queue_size)))
        self._stopping = threading.Event()
        self._started = []
        self._open()
        # an unclosed source would leave librealsense's threads blocked on our queue at exit
        atexit.register(_close_weak, weakref.ref(self))

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _open(self):
        rs = self._rs
        try:
            device = rs.context().load_device(str(self.path))
        except RuntimeError as exc:
            raise DataError(f"recording {self.path}: librealsense cannot open it: {exc}") from exc
        self._device = device
        self._playback = device.as_playback()
        chosen, found = {}, []
        for sensor in device.query_sensors():
            for prof in sensor.get_stream_profiles():
                found.append(f"{prof.stream_type().name}/{prof.format().name}")
                if prof.stream_type() in (rs.stream.depth, rs.stream.color) and prof.stream_type() not in chosen:
                    chosen[prof.stream_type()] = (sensor, prof)
        for need in (rs.stream.depth, rs.stream.color):
            if need not in chosen:
                raise DataError(f"recording {self.path} has no {need.name} stream (streams found: "
                                f"{', '.join(sorted(set(found))) or 'none'}); an RGB-D recording needs depth and color")
        cprof = chosen[rs.stream.color][1]
        if cprof.format() not in (rs.format.rgb8, rs.format.bgr8):
            raise DataError(f"recording {self.path}: color format {cprof.format().name} is not supported (rgb8 or bgr8)")
        self._bgr = cprof.format() == rs.format.bgr8
        self.depth_scale_m = _depth_scale(device, f"recording {self.path}")
        dvp, cvp = chosen[rs.stream.depth][1].as_video_stream_profile(), cprof.as_video_stream_profile()
        self.size = (cvp.width(), cvp.height())
        self.intrinsics = _intrinsics(cvp)
        self._depth_k = _intrinsics(dvp)
        same = _same_geometry(rs, dvp, cvp)
        self.aligned = self.align_to == "color" or (self.align_to == "auto" and not same)
        if self.aligned:
            ext = dvp.get_extrinsics_to(cvp)
            self._extr = (list(ext.rotation), list(ext.translation))
        self._blocks = build_filters(rs, self.filter_names)
        self._dsize = (dvp.width(), dvp.height())
        self._playback.set_real_time(False)
        self._playback.pause()  # nothing plays until every sensor listens
        try:
            for stream, (sensor, prof) in chosen.items():
                sensor.open(prof)
                self._started.append(sensor)
                sensor.start(self._callback(stream == rs.stream.depth))
        except RuntimeError as exc:
            self._close()
            raise DataError(f"recording {self.path}: cannot start playback: {exc}") from exc
        self._resumed = False

    def _callback(self, is_depth):
        blocks = self._blocks if is_depth else []

        def on_frame(frame):
            if self._stopping.is_set():
                return
            try:
                if blocks:
                    frame = _apply(blocks, frame)
                item = (is_depth, int(frame.get_frame_number()), np.asanyarray(frame.get_data()).copy(),
                        frame.get_timestamp() / 1000.0)
            except Exception as exc:  # surfaced by the consumer, never lost in librealsense's thread
                item = ("error", exc)
            while not self._stopping.is_set():  # blocking put = back pressure on the reader
                try:
                    self._queue.put(item, timeout=0.05)
                    return
                except queue.Full:
                    continue
        return on_frame

    def _items(self):
        rs = self._rs
        if not self._resumed:
            # resume() reads ahead synchronously and blocks on our full queue until librealsense
            # gives up (10 s), so it runs on a helper thread while this thread consumes
            self._resumed = True
            threading.Thread(target=self._playback.resume, name="rs-playback-resume", daemon=True).start()
        last = time.monotonic()
        while not self._closed:
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                if self._playback.current_status() == rs.playback_status.stopped and self._queue.empty():
                    return
                if time.monotonic() - last > self.stall_s:
                    raise DataError(f"recording {self.path}: playback stalled for {self.stall_s:.0f} s before its end")
                continue
            if item[0] == "error":
                raise DataError(f"recording {self.path}: decoding a frame failed: {item[1]}") from item[1]
            last = time.monotonic()
            yield item

    def _depth_to_color(self, depth):
        if not self.aligned:
            return depth
        k = self._depth_k
        if depth.shape[::-1] != self._dsize:  # decimation: scale the intrinsics with the image
            sx, sy = depth.shape[1] / self._dsize[0], depth.shape[0] / self._dsize[1]
            k = (k[0] * sx, k[1] * sy, (k[2] + 0.5) * sx - 0.5, (k[3] + 0.5) * sy - 0.5)
        return align_depth_to_color(depth, self.depth_scale_m, k, self.intrinsics, self.size, *self._extr)

    def _make(self, number, rgb, depth, ts, depth_number):
        if rgb is not None and self._bgr:
            rgb = np.ascontiguousarray(rgb[..., ::-1])
        labels = self.labels.get(number)
        return Frame(frame_id=number, rgb=rgb, depth=None if depth is None else self._depth_to_color(depth),
                     depth_scale_m=self.depth_scale_m, timestamp_s=ts,
                     labels=None if labels is None else labels.copy(), intrinsics=self.intrinsics,
                     meta={"source": self.name, "depth_frame_number": depth_number,
                           "aligned": self.aligned, "filters": list(self.filter_names)})

    def _frames(self):
        mode = None if self.pair_by == "auto" else self.pair_by
        depths: Dict[int, tuple] = {}
        colors: Dict[int, tuple] = {}
        emitted = -1
        for is_depth, number, arr, ts in self._items():
            (depths if is_depth else colors)[number] = (arr, ts)
            if mode is None and depths and colors:
                mode = "frame_number" if set(depths) & set(colors) else "arrival"
            if mode == "arrival":  # independent counters: pair in arrival order, ids from colour
                while depths and colors:
                    dn = min(depths)
                    cn = min(colors)
                    (d, _), (c, cts) = depths.pop(dn), colors.pop(cn)
                    yield self._make(cn, c, d, cts, dn)
                continue
            # frame-number matching: each stream arrives in order, so anything older than a
            # matched number can no longer find its partner
            for n in sorted(set(depths) & set(colors)):
                if n <= emitted:  # duplicate delivery of an already emitted number
                    depths.pop(n), colors.pop(n)
                    continue
                for old in sorted(k for k in colors if k < n):  # colour whose depth never came
                    c, cts = colors.pop(old)
                    self.unmatched_color += 1
                    yield self._make(old, c, None, cts, None)
                for old in [k for k in depths if k < n]:
                    depths.pop(old)
                    self.unmatched_depth += 1
                (d, _), (c, cts) = depths.pop(n), colors.pop(n)
                emitted = n
                yield self._make(n, c, d, cts, n)
        for old in sorted(colors):
            c, cts = colors.pop(old)
            self.unmatched_color += 1
            yield self._make(old, c, None, cts, None)
        self.unmatched_depth += len(depths)

    def _close(self):
        self._stopping.set()
        while True:  # unblock callbacks waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for sensor in self._started:
            for op in (sensor.stop, sensor.close):
                try:
                    op()
                except RuntimeError:
                    pass
        self._started = []


def open_realsense(target: str, opts: dict) -> RealSenseSource:
    return RealSenseSource(serial=target, **opts)


def open_playback(target: str, opts: dict) -> PlaybackSource:
    return PlaybackSource(target, **opts)


REALSENSE_OPTIONS = {"width": (int, 640), "height": (int, 480), "fps": (int, 30), "filters": (list, ()),
                     "align": (str, "color"), "reconnect": (bool, False), "retries": (int, 3),
                     "timeout_ms": (int, 5000)}
PLAYBACK_OPTIONS = {"filters": (list, ()), "align": (str, "auto"), "labels": (str, "auto"),
                    "pair_by": (str, "auto"), "stall_s": (float, 10.0), "queue_size": (int, 8)}


def read_recording(path, max_frames: Optional[int] = None) -> List[Frame]:
    """Every frame of a .db3 recording exactly once, in frame-number order, labels from the sidecar.

    Uses PlaybackSource (non-real-time, per-sensor callbacks into a blocking queue),
    so tests and the runtime read recordings through one code path.
    """
    out: List[Frame] = []
    with PlaybackSource(path) as src:
        for f in src:
            out.append(f)
            if max_frames is not None and len(out) >= max_frames:
                break
    return out

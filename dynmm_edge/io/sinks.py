"""Sinks: where Results go (window, video, PNGs, JSON lines, nowhere), picked by URI.

Every sink is a context manager: a clean exit finalises the output, an exception aborts it (a
video that was interrupted by an error never appears under its final name).
"""
import errno
import json
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from dynmm_edge._lazy import require
from dynmm_edge.atomic import current_umask, write_bytes
from dynmm_edge.errors import DataError
from dynmm_edge.io.base import parse_uri, resolve_options
from dynmm_edge.types import Result
from dynmm_edge.viz.overlay import as_palette, draw_hud, draw_legend, hud_fps, overlay, resize_nearest


class Sink:
    """write(result) for each frame; close() finalises; abort() discards unfinished output.

    wants_stop turns True when the user asked to stop (window closed, 'q'/Esc); the pipeline
    polls it after every write.
    """

    name = "sink"

    def __init__(self):
        self._closed = False
        self.frames_written = 0

    @property
    def wants_stop(self) -> bool:
        return False

    def write(self, result: Result) -> None:
        if self._closed:
            raise DataError(f"sink {self.name!r} is closed")
        self._write(result)
        self.frames_written += 1

    def _write(self, result: Result) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def abort(self) -> None:
        """Default: same as close (for sinks whose partial output is still valid, e.g. JSONL)."""
        self.close()

    def _close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):  # Ctrl-C, SIGTERM, SIGHUP
            self.close()
        else:
            self.abort()
        return False


def _rgb_of(result: Result) -> Optional[np.ndarray]:
    return None if result.frame is None else result.frame.rgb


class _Renderer:
    """Overlay + HUD shared by the display and video sinks (so they show the same picture)."""

    def __init__(self, palette, class_names, alpha, hud: bool):
        self.palette = as_palette(palette)
        self.class_names = tuple(class_names) if class_names is not None else None  # the HUD's legend
        self.alpha = float(alpha)
        self.hud = hud
        self._times = deque(maxlen=30)
        self.frames = 0
        self.depth_fraction_sum = 0.0

    def hud_lines(self, result: Result) -> List[str]:
        now = time.perf_counter()
        self._times.append(now)
        self.frames += 1
        self.depth_fraction_sum += float(result.depth_fraction)
        share = 100.0 * (1.0 - self.depth_fraction_sum / self.frames)
        total = result.times_ms.get("total")
        lines = [f"FPS {hud_fps(self._times, total)}" + (f"  total {total:.1f} ms" if total is not None else ""),
                 f"frame {result.frame_id}  path {result.path}  depth {result.depth_macs / 1e9:.2f} GMAC",
                 f"depth compute skipped: {share:4.1f}%"]
        if result.tile_mask is not None:
            lines.append(f"depth tiles active: {100.0 * result.active_share:4.1f}%"
                         + (f", reused {100.0 * result.reused_share:4.1f}%" if result.reused_share is not None else ""))
        return lines

    def render(self, result: Result) -> np.ndarray:
        rgb = _rgb_of(result)
        labels = np.asarray(result.labels)
        if rgb is None:  # no input frame: show the labels alone
            from dynmm_edge.viz.overlay import colorize
            img = colorize(labels, self.palette)
        else:
            img = overlay(rgb, labels, self.palette, self.alpha)
        if result.tile_mask is not None:  # region mode: outline the tiles whose depth ran
            from dynmm_edge.viz.overlay import draw_tiles
            img = draw_tiles(img, result.tile_mask)
        if self.hud:
            img = draw_hud(img, self.hud_lines(result))
            if self.class_names:
                img = draw_legend(img, labels, self.class_names, self.palette)
        return img


def check_display(environ=None) -> None:
    """Fail before the run starts when there is no screen (OpenCV's Qt would abort the process)."""
    environ = os.environ if environ is None else environ
    if sys.platform.startswith("linux") and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        raise DataError("display:// needs a graphical display, but neither DISPLAY nor WAYLAND_DISPLAY is set "
                        "(ssh without -X, a service or a container?); write out.mp4 or png://DIR instead")


class _TargetLock:
    """Holds folder_commit's lock on an output file for a sink's lifetime (two runs, one file)."""

    def __init__(self, path: Path):
        import contextlib
        from dynmm_edge.folder_commit import FolderBusy, folder_lock
        self._stack = contextlib.ExitStack()
        try:
            self._stack.enter_context(folder_lock(path))
        except FolderBusy:
            raise DataError(f"{path} is being written by another dynmm-edge run; choose another output "
                            f"file or wait for it to finish") from None

    def release(self) -> None:
        self._stack.close()


def _write_failed(sink: str, path: Path, exc: OSError) -> DataError:
    return DataError(f"{sink} sink {path}: write failed ({exc.strerror or exc}); the output was discarded"
                     + ("; the disk is full" if exc.errno == errno.ENOSPC else ""))


class DisplaySink(Sink):
    """cv2.imshow window with overlay and HUD; 'q' or Esc (or closing the window) sets wants_stop."""

    OPTIONS = {"title": (str, "dynmm-edge"), "hud": (bool, True), "wait_ms": (int, 1)}

    def __init__(self, palette=None, class_names=None, alpha=0.5, title="dynmm-edge", hud=True, wait_ms=1):
        super().__init__()
        check_display()
        self._cv2 = require("cv2", "the display:// sink")
        self.name = f"display:{title}"
        self.title = title
        self.wait_ms = max(1, int(wait_ms))
        self.renderer = _Renderer(palette, class_names, alpha, hud)
        self._stop = False
        self._shown = False

    @property
    def wants_stop(self) -> bool:
        return self._stop

    def _write(self, result):
        cv2 = self._cv2
        img = self.renderer.render(result)
        cv2.imshow(self.title, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        self._shown = True
        key = cv2.waitKey(self.wait_ms) & 0xFF
        if key in (ord("q"), 27):
            self._stop = True
        elif cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self._stop = True

    def _close(self):
        if self._shown:
            try:
                self._cv2.destroyWindow(self.title)
                self._cv2.waitKey(1)
            except Exception:  # window already gone (user closed it)
                pass


class VideoSink(Sink):
    """Overlay video via cv2.VideoWriter (mp4v for .mp4, MJPG for .avi).

    Written under a hidden temporary name beside the target and renamed on close, so an
    interrupted run never leaves a file that looks whole. Frame size is fixed by the first frame.
    """

    OPTIONS = {"fps": (float, 30.0), "hud": (bool, True), "fourcc": (str, "")}
    CODECS = {".mp4": "mp4v", ".avi": "MJPG"}

    def __init__(self, path, palette=None, class_names=None, alpha=0.5, fps=30.0, hud=True, fourcc=""):
        super().__init__()
        self._cv2 = require("cv2", "video sinks")
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in self.CODECS:
            raise DataError(f"video sink {self.path}: extension must be one of {sorted(self.CODECS)}")
        self.fourcc = fourcc or self.CODECS[ext]
        if len(self.fourcc) != 4:
            raise DataError(f"video sink {self.path}: fourcc must have 4 characters, got {self.fourcc!r}")
        if fps <= 0:
            raise DataError(f"video sink {self.path}: fps must be > 0, got {fps}")
        self.fps = float(fps)
        self.name = f"video:{self.path}"
        self.renderer = _Renderer(palette, class_names, alpha, hud)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_dir():
            raise DataError(f"video sink {self.path}: is a folder; give a file name")
        self._lock = _TargetLock(self.path)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial" + ext, dir=self.path.parent)
        os.close(fd)
        self.tmp_path = Path(tmp)
        self._writer = None
        self._size = None

    def _write(self, result):
        cv2 = self._cv2
        img = self.renderer.render(result)
        if self._writer is None:
            h, w = img.shape[:2]
            self._size = (w, h)
            self._writer = cv2.VideoWriter(str(self.tmp_path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (w, h))
            if not self._writer.isOpened():
                raise DataError(f"video sink {self.path}: OpenCV cannot open a {self.fourcc} writer for {w}x{h}")
        if (img.shape[1], img.shape[0]) != self._size:
            img = cv2.resize(img, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))

    def _close(self):
        try:
            if self._writer is None:  # nothing was written: leave no file at all
                self._discard()
                return
            self._writer.release()
            try:
                self._check_written()
                with open(self.tmp_path, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.chmod(self.tmp_path, 0o666 & ~current_umask())  # mkstemp made it 0600
                os.replace(self.tmp_path, self.path)
            except OSError as exc:
                self._discard()
                raise _write_failed("video", self.path, exc) from exc
            except DataError:
                self._discard()
                raise
        finally:
            self._lock.release()

    def _check_written(self) -> None:
        """OpenCV's write() reports nothing (a full disk passes silently): count what the file holds."""
        cv2 = self._cv2
        cap = cv2.VideoCapture(str(self.tmp_path))
        try:
            held = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        finally:
            cap.release()
        if held != self.frames_written:
            free = shutil.disk_usage(self.tmp_path.parent).free
            raise DataError(f"video sink {self.path}: {self.frames_written} frames written but the file holds "
                            f"{held} ({free // 2**20} MiB free on that disk; full?); the video was discarded")

    def abort(self):
        if not self._closed:
            self._closed = True
            if self._writer is not None:
                self._writer.release()
            self._discard()
            self._lock.release()

    def _discard(self):
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass


class PngSink(Sink):
    """Labels as 8-bit PNG named by frame id (000042.png); ?overlay=1 adds 000042_overlay.png.

    Each file is written atomically. Labels stay at the model's output size unless
    ?resize=1, which resizes them (nearest) to the input frame.
    """

    OPTIONS = {"overlay": (bool, False), "resize": (bool, False), "digits": (int, 6)}

    def __init__(self, directory, palette=None, alpha=0.5, overlay=False, resize=False, digits=6):
        super().__init__()
        self._cv2 = require("cv2", "the png:// sink")
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise DataError(f"png sink: {self.directory} exists and is not a directory")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.name = f"png:{self.directory}"
        self.palette = as_palette(palette)
        self.alpha = float(alpha)
        self.with_overlay = overlay
        self.resize = resize
        self.digits = digits

    def _write(self, result):
        cv2 = self._cv2
        labels = np.asarray(result.labels)
        if labels.ndim != 2:
            raise DataError(f"png sink: labels of frame {result.frame_id} must be HxW, got {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise DataError(f"png sink: labels of frame {result.frame_id} do not fit in 8 bits "
                            f"(range {labels.min()}..{labels.max()})")
        rgb = _rgb_of(result)
        if self.resize and rgb is not None:
            labels = resize_nearest(labels, rgb.shape[0], rgb.shape[1])
        stem = f"{int(result.frame_id):0{self.digits}d}"
        ok, buf = cv2.imencode(".png", labels.astype(np.uint8))
        if not ok:
            raise DataError(f"png sink: cannot encode labels of frame {result.frame_id}")
        write_bytes(self.directory / f"{stem}.png", buf.tobytes())
        if self.with_overlay:
            if rgb is None:
                raise DataError(f"png sink: overlay=1 needs result.frame (frame {result.frame_id} has none)")
            img = overlay(rgb, labels, self.palette, self.alpha)
            ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            write_bytes(self.directory / f"{stem}_overlay.png", buf.tobytes())


class JsonlSink(Sink):
    """One JSON object per frame (frame_id, path, branches_run, times_ms, depth_macs, bad_frames).

    Rows go to a hidden temporary file beside the target, flushed per line; close() renames it
    over the target, so an existing file is replaced only by a finished run, and a lock refuses a
    second run writing the same file. abort() discards the rows. ?gate_probs=1 adds the gate output.
    """

    OPTIONS = {"gate_probs": (bool, False)}

    def __init__(self, path, gate_probs=False):
        super().__init__()
        self.path = Path(path)
        self.name = f"jsonl:{self.path}"
        self.gate_probs = gate_probs
        if self.path.is_dir():
            raise DataError(f"jsonl sink {self.path}: is a folder; give a file name ending in .jsonl")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _TargetLock(self.path)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial.jsonl", dir=self.path.parent)
        except BaseException:
            self._lock.release()
            raise
        os.chmod(tmp, 0o666 & ~current_umask())
        self.tmp_path = Path(tmp)
        self._fh = os.fdopen(fd, "w", encoding="utf-8")

    def _write(self, result):
        rec = {"frame_id": int(result.frame_id), "path": int(result.path),
               "branches_run": list(result.branches_run),
               "times_ms": {k: float(v) for k, v in result.times_ms.items()},
               "depth_macs": float(result.depth_macs)}
        frame = result.frame
        if frame is not None and "bad_frames_before" in frame.meta:
            rec["bad_frames"] = int(frame.meta["bad_frames_before"])
        if result.tile_mask is not None:  # region mode
            rec["active_share"] = float(result.active_share)
            if result.reused_share is not None:
                rec["reused_share"] = float(result.reused_share)
            rec["tile_mask"] = np.asarray(result.tile_mask, dtype=np.uint8).tolist()
        if self.gate_probs and result.gate_probs is not None:
            rec["gate_probs"] = np.asarray(result.gate_probs, dtype=np.float64).tolist()
        try:
            self._fh.write(json.dumps(rec, allow_nan=False) + "\n")
            self._fh.flush()
        except OSError as exc:
            raise _write_failed("jsonl", self.path, exc) from exc

    def _close(self):
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self.tmp_path, self.path)
        except OSError as exc:
            self._discard()
            raise _write_failed("jsonl", self.path, exc) from exc
        finally:
            self._lock.release()

    def abort(self):
        if not self._closed:
            self._closed = True
            self._discard()
            self._lock.release()

    def _discard(self):
        try:
            self._fh.close()
        except OSError:
            pass
        self.tmp_path.unlink(missing_ok=True)


class NullSink(Sink):
    """Discards results (benchmarks, tests)."""

    OPTIONS: Dict[str, tuple] = {}

    def __init__(self):
        super().__init__()
        self.name = "null"

    def _write(self, result):
        pass


class MultiSink(Sink):
    """Fans a result out to several sinks; wants_stop when any of them does."""

    def __init__(self, sinks: Sequence[Sink]):
        super().__init__()
        self.sinks = list(sinks)
        self.name = "+".join(s.name for s in self.sinks) or "multi"

    @property
    def wants_stop(self):
        return any(s.wants_stop for s in self.sinks)

    def _write(self, result):
        for s in self.sinks:
            s.write(result)

    def _close(self):
        self._each("close")

    def abort(self):
        if not self._closed:
            self._closed = True
            self._each("abort")

    def _each(self, method):
        first = None
        for s in self.sinks:
            try:
                getattr(s, method)()
            except Exception as exc:  # close every sink, then report the first failure
                first = first or exc
        if first is not None:
            raise first


def _look(common):
    """The shared keywords a drawing sink uses."""
    return {"palette": common["palette"], "alpha": common["alpha"]}


def _hud_look(common):
    """A sink with a HUD also names the classes it shows (the legend)."""
    return {**_look(common), "class_names": common["class_names"]}


def _file(target, common, opts):
    ext = Path(target).suffix.lower()
    if ext in VideoSink.CODECS:
        return VideoSink(target, **_hud_look(common), **opts)
    if ext == ".jsonl":
        return JsonlSink(target, **opts)
    raise DataError(f"file:// sink {target!r}: unsupported extension {ext!r}; use .mp4, .avi or .jsonl")


# scheme -> (factory(target, common_kwargs, options), options spec, needs a target)
SINKS: Dict[str, tuple] = {
    "display": (lambda t, c, o: DisplaySink(**_hud_look(c), **o), DisplaySink.OPTIONS, False),
    "file": (_file, VideoSink.OPTIONS, True),
    "png": (lambda t, c, o: PngSink(t, **_look(c), **o), PngSink.OPTIONS, True),
    "jsonl": (lambda t, c, o: JsonlSink(t, **o), JsonlSink.OPTIONS, True),
    "null": (lambda t, c, o: NullSink(**o), NullSink.OPTIONS, False),
}


def _rosbag2(target, common, opts):
    from dynmm_edge.io.rosbag2 import open_rosbag2_sink  # imports this module and rosbags: lazily
    return open_rosbag2_sink(target, common, opts)


from dynmm_edge.io.rosmsg import SINK_OPTIONS as _ROSBAG2_OPTIONS  # noqa: E402  (numpy only)
SINKS["rosbag2"] = (_rosbag2, _ROSBAG2_OPTIONS, True)


def open_sink(uri, palette=None, class_names=None, alpha: float = 0.5, **opts) -> Sink:
    """Open one sink from a URI.

    display://[TITLE]  file://out.mp4 | out.mp4 | out.avi  png://DIR | an existing directory or
    a path ending in '/'  jsonl://stats.jsonl | stats.jsonl  null://
    Options come from the query string (?overlay=1) or keywords; unknown ones raise DataError.
    """
    p = parse_uri(uri)
    common = {"palette": palette, "class_names": class_names, "alpha": alpha}
    if not 0.0 <= float(alpha) <= 1.0:
        raise DataError(f"alpha must be in [0, 1], got {alpha}")
    scheme, target = p.scheme, p.target
    if scheme == "":
        path = Path(target)
        ext = path.suffix.lower()
        if ext in VideoSink.CODECS:
            scheme = "file"
        elif ext == ".jsonl":
            scheme = "jsonl"
        elif path.is_dir() or target.endswith(("/", os.sep)):
            scheme = "png"
        else:
            raise DataError(f"cannot tell which sink {target!r} is: use a .mp4/.avi/.jsonl path, a directory "
                            f"(ending in '/'), or a URI with one of {sorted(s + '://' for s in SINKS)}")
    if scheme not in SINKS:
        raise DataError(f"unknown sink scheme {scheme!r} in {p.text!r}; valid: {sorted(s + '://' for s in SINKS)}")
    factory, spec, needs_target = SINKS[scheme]
    if scheme == "file" and Path(target).suffix.lower() == ".jsonl":
        spec = JsonlSink.OPTIONS
    if scheme == "display" and target:
        opts.setdefault("title", target)
    options = resolve_options(f"sink {p.text!r}", spec, p.query, opts)
    if needs_target and not target:
        raise DataError(f"sink {p.text!r} needs a path after {scheme}://")
    return factory(target, common, options)


def open_sinks(uris: Iterable, **kwargs) -> MultiSink:
    """Several sinks at once; if one fails to open, the ones already open are aborted."""
    opened: List[Sink] = []
    try:
        for u in uris:
            opened.append(u if isinstance(u, Sink) else open_sink(u, **kwargs))
    except BaseException:
        for s in opened:
            try:
                s.abort()
            except Exception:
                pass
        raise
    return MultiSink(opened)

"""A camera stand-in for pipeline tests: frames on a fixed real-time schedule."""
import threading
import time
from typing import Callable, Optional, Tuple

from dynmm_edge.io.base import FrameSource
from dynmm_edge.types import Frame


class FakeLiveSource(FrameSource):
    """Emulates a camera: frames come from `make_frame(i)` at `fps`, whether or not anyone keeps up.

    `produced` counts frames handed out, so tests can check frames_in == frames_out + dropped.
    The clock is absolute (start + i / fps): a slow consumer does not slow the camera down, it
    just gets the next due frame immediately, like a driver whose buffer it failed to drain.
    """

    live = True

    def __init__(self, make_frame: Callable[[int], Frame], num_frames: Optional[int] = None,
                 fps: float = 30.0, name: str = "fake-live", size: Optional[Tuple[int, int]] = None):
        super().__init__()
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self._make = make_frame
        self.num_frames = num_frames
        self.fps = float(fps)
        self.name = name
        self.size = size
        self.produced = 0
        self._lock = threading.Lock()

    def _frames(self):
        start = time.perf_counter()
        i = 0
        while not self._closed and (self.num_frames is None or i < self.num_frames):
            due = start + i / self.fps
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            frame = self._make(i)
            if self.size is None:
                self.size = (frame.rgb.shape[1], frame.rgb.shape[0])
            with self._lock:
                self.produced += 1
            yield frame
            i += 1

"""SyntheticWorld frames as a FrameSource: demos and tests with ground truth and no camera.

Offline by default (frames as fast as the consumer takes them); ?live=1&fps=N paces them on an
absolute clock and marks the source live, so the pipeline's drop-oldest path can be exercised
exactly as with a camera.
"""
import time
from typing import Optional

from dynmm_edge.errors import DataError
from dynmm_edge.io.base import FrameSource

MOTIONS = ("walk", "still", "iid")

OPTIONS = {
    "frames": (int, 100), "width": (int, 320), "height": (int, 240), "hard_fraction": (float, 0.3),
    "seed": (int, 0), "motion": (str, "walk"), "start": (int, 0), "live": (bool, False), "fps": (float, 30.0),
    "world": (int, 2),
}


class SyntheticSource(FrameSource):
    """frames: count (0 or less = endless, live only); motion 'walk' | 'still' (one scene, a camera
    path) or 'iid' (independent frames from SyntheticWorld.frame). Frames carry labels."""

    def __init__(self, frames: int = 100, width: int = 320, height: int = 240, hard_fraction: float = 0.3,
                 seed: int = 0, motion: str = "walk", start: int = 0, live: bool = False, fps: float = 30.0,
                 world: int = 2):
        super().__init__()
        from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld
        if motion not in MOTIONS:
            raise DataError(f"synthetic source: motion must be one of {MOTIONS}, got {motion!r}")
        if fps <= 0:
            raise DataError(f"synthetic source: fps must be > 0, got {fps}")
        if frames <= 0 and not live:
            raise DataError("synthetic source: frames must be > 0 for an offline source (endless only with live=1)")
        try:
            cfg = SynthConfig(width=width, height=height, hard_fraction=hard_fraction, seed=seed, world=world)
        except ValueError as exc:
            raise DataError(f"synthetic source: {exc}") from exc
        self.world = SyntheticWorld(cfg)
        self.num_frames: Optional[int] = frames if frames > 0 else None
        self.motion, self.start, self.fps = motion, start, float(fps)
        self.live = bool(live)
        self.size = (width, height)
        self.name = f"synthetic(seed={seed}, {motion})"
        self.produced = 0

    def __len__(self):
        if self.num_frames is None:
            raise TypeError("endless synthetic source has no length")
        return self.num_frames

    def _render(self, j: int):
        if self.motion == "iid":
            sf = self.world.frame(self.start + j)
            sf.timestamp_s = j / self.fps
        else:
            # one sequence object per call is cheap (it is a lazy view)
            sf = self.world.sequence(j + 1, start=self.start, motion=self.motion, fps=self.fps)[j]
        frame = sf.to_frame()
        frame.frame_id = j
        frame.meta["world_index"] = sf.index
        return frame

    def _frames(self):
        t0 = time.perf_counter()
        j = 0
        while not self._closed and (self.num_frames is None or j < self.num_frames):
            if self.live:
                delay = t0 + j / self.fps - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            frame = self._render(j)
            self.produced += 1
            yield frame
            j += 1


def open_synthetic(target: str, opts: dict) -> SyntheticSource:
    return SyntheticSource(**opts)

"""The pure part of the `dynmm-edge ros2` node: messages in, messages out, no rclpy.

Subscription callbacks call on_rgb / on_depth (cheap: pairing only); an inference thread calls
step(). Pairs wait in ONE slot: a newer pair replaces an unprocessed older one (counted as stale),
so a slow model always works on the newest frame and never builds a backlog. Inference, message
building and publishing come in as callables, so tests drive the node with recorded messages, a
recording publisher and a fake clock, and the rclpy shell (apps/ros2_cmd.py) stays thin.
"""
import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional

from dynmm_edge.errors import DataError
from dynmm_edge.io.rosmsg import (COMPRESSED, DEPTH_TOPICS, IMAGE, OUT_PREFIX, RGB_TOPICS, frame_from_pair,
                                  result_messages, stamp_ns)
from dynmm_edge.io.rossync import ApproxTimeSync, Pair
from dynmm_edge.types import Frame, Result

log = logging.getLogger(__name__)
OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


def image_type_of(topic: str) -> str:
    """image_transport naming: .../compressed and .../compressedDepth carry CompressedImage."""
    return COMPRESSED if topic.rstrip("/").endswith(("/compressed", "/compressedDepth")) else IMAGE


@dataclass(frozen=True)
class NodeConfig:
    """Topics and behaviour; the ROS parameters of the same names override these."""
    rgb_topic: str = RGB_TOPICS[0]
    depth_topic: str = DEPTH_TOPICS[0]
    prefix: str = OUT_PREFIX
    tolerance_ms: float = 15.0
    sync_queue: int = 5           # messages per stream waiting for a partner (old ones are useless)
    overlay: bool = True
    resize: bool = True
    alpha: float = 0.5
    diagnostics_period_s: float = 1.0
    name: str = "dynmm_edge"

    def topic(self, key: str) -> str:
        if key == "diagnostics":
            return "/diagnostics"
        return f"/{self.prefix.strip('/')}/{key}" if self.prefix.strip("/") else f"/{key}"


class SegmentationNodeCore:
    """infer(Frame) -> Result; publish(key, msg) with key in labels|overlay|status|diagnostics;
    factory builds messages (rosbags or rclpy classes); clock() -> seconds (monotonic)."""

    def __init__(self, infer: Callable[[Frame], Result], publish: Callable[[str, object], None], factory,
                 config: NodeConfig = NodeConfig(), palette=None, num_classes: int = 256,
                 clock: Callable[[], float] = time.monotonic):
        self.cfg = config
        self._infer, self._publish, self._factory, self._clock = infer, publish, factory, clock
        self.palette, self.num_classes = palette, int(num_classes)
        self._types = (image_type_of(config.rgb_topic), image_type_of(config.depth_topic))
        self._topics = (config.rgb_topic, config.depth_topic)
        self._sync = ApproxTimeSync(int(round(config.tolerance_ms * 1e6)), queue_size=config.sync_queue)
        self._cv = threading.Condition()
        self._pending: Optional[Pair] = None
        self.frames = 0
        self.stale = 0
        self.errors = 0
        self.last_error = ""
        self._done = collections.deque(maxlen=30)
        self._depth_fraction_sum = 0.0
        self._last_diag = None

    # -------------------------------------------------------------- subscription side (fast)
    def on_rgb(self, msg) -> None:
        self._push("rgb", msg)

    def on_depth(self, msg) -> None:
        self._push("depth", msg)

    def _push(self, stream: str, msg) -> None:
        with self._cv:
            for pair in self._sync.push(stream, stamp_ns(msg), msg):
                if self._pending is not None:
                    self.stale += 1  # never processed: a newer pair is worth more
                self._pending = pair
            self._cv.notify_all()

    def take(self, timeout: float = 0.0) -> Optional[Pair]:
        """The newest unprocessed pair (waiting up to `timeout` s), or None."""
        with self._cv:
            if self._pending is None and timeout > 0:
                self._cv.wait_for(lambda: self._pending is not None, timeout)
            pair, self._pending = self._pending, None
            return pair

    # -------------------------------------------------------------- inference side
    def step(self, timeout: float = 0.0) -> Optional[Result]:
        """Process the newest pair, publish its outputs; None when nothing was waiting or the
        pair could not be used (counted in errors and reported in diagnostics, the node lives on)."""
        pair = self.take(timeout)
        if pair is None:
            return None
        try:
            frame = frame_from_pair(self.frames + self.errors, pair.rgb, pair.depth, self._types, self._topics)
            result = self._infer(frame)
            msgs = result_messages(result, self._factory, self.palette, self.num_classes, self.cfg.alpha,
                                   self.cfg.overlay, self.cfg.resize)
        except DataError as exc:
            self.errors += 1
            if str(exc) != self.last_error:
                log.error("%s: %s", self.cfg.name, exc)
            self.last_error = str(exc)
            self._maybe_diagnostics(force=self.errors == 1)
            return None
        for key, msg in msgs.items():
            self._publish(key, msg)
        self.frames += 1
        self._done.append(self._clock())
        self._depth_fraction_sum += float(result.depth_fraction)
        self._maybe_diagnostics()
        return result

    def stats(self) -> Dict[str, object]:
        t = self._done
        fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0
        share = 1.0 - self._depth_fraction_sum / self.frames if self.frames else 0.0
        return {"frames": self.frames, "fps": round(fps, 2), "depth_skip_share": round(share, 4),
                "dropped_stale": self.stale, "dropped_unpaired_rgb": self._sync.dropped["rgb"],
                "dropped_unpaired_depth": self._sync.dropped["depth"], "errors": self.errors}

    def _maybe_diagnostics(self, force: bool = False) -> None:
        now = self._clock()
        if not force and self._last_diag is not None and now - self._last_diag < self.cfg.diagnostics_period_s:
            return
        self._last_diag = now
        st = self.stats()
        level, text = (ERROR, self.last_error) if self.errors and not self.frames else \
            (WARN, f"{self.errors} unusable frame(s); last: {self.last_error}") if self.errors else \
            (OK, f"{st['fps']} FPS, depth compute skipped {100 * st['depth_skip_share']:.1f}%")
        self._publish("diagnostics", self._factory.diagnostics(int(now * 1e9), f"{self.cfg.name}: segmentation",
                                                               level, text, st))

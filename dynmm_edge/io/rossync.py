"""Approximate-time pairing of colour and depth messages by header stamp.

One pure-Python class serves the rosbag2 source (messages in log order, then `finish()`) and the
ROS 2 node (messages as they arrive), so the pairing a robot sees live is the pairing tested on
bags. Rule: a colour message pairs with the queued depth message closest to it in stamp, if that
is within the tolerance; a message that can no longer pair with anything (its partner stream has
moved past it by more than the tolerance), or that falls off a bounded queue, is dropped and
counted. Within each stream stamps are assumed non-decreasing (late ones are still inserted in
order). Greedy: with a tolerance below half the frame period every pair is unique.
"""
import bisect
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

STREAMS = ("rgb", "depth")


@dataclass(frozen=True)
class Pair:
    rgb: Any
    depth: Any
    rgb_ns: int
    depth_ns: int


class ApproxTimeSync:
    """push(stream, stamp_ns, item) -> pairs completed by that message.

    tolerance_ns: largest |colour stamp - depth stamp| accepted. queue_size: messages kept per
    stream while waiting for a partner (the node uses a small one: old frames are worth nothing).
    dropped[stream] counts messages that never paired; closest_ns is the smallest gap seen
    between any colour and depth stamp (for the 'nothing pairs' error).
    """

    def __init__(self, tolerance_ns: int, queue_size: int = 64):
        if tolerance_ns < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance_ns} ns")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.tolerance_ns = int(tolerance_ns)
        self.queue_size = int(queue_size)
        self._q: Dict[str, List[Tuple[int, int, Any]]] = {s: [] for s in STREAMS}
        self._seq = 0
        self.received = {s: 0 for s in STREAMS}
        self.dropped = {s: 0 for s in STREAMS}
        self.paired = 0
        self.closest_ns: Optional[int] = None
        self.ranges: Dict[str, List[int]] = {}

    def push(self, stream: str, stamp_ns: int, item) -> List[Pair]:
        if stream not in self._q:
            raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
        stamp_ns = int(stamp_ns)
        self.received[stream] += 1
        lo_hi = self.ranges.setdefault(stream, [stamp_ns, stamp_ns])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], stamp_ns), max(lo_hi[1], stamp_ns)
        self._note_gap(stream, stamp_ns)
        q = self._q[stream]
        self._seq += 1
        bisect.insort(q, (stamp_ns, self._seq, item))
        if len(q) > self.queue_size:
            q.pop(0)
            self.dropped[stream] += 1
        return self._match()

    def _note_gap(self, stream: str, t: int) -> None:
        other = self._q["depth" if stream == "rgb" else "rgb"]
        if not other:
            return
        i = bisect.bisect_left(other, (t, -1))
        for j in (i - 1, i):
            if 0 <= j < len(other):
                gap = abs(other[j][0] - t)
                self.closest_ns = gap if self.closest_ns is None else min(self.closest_ns, gap)

    def _match(self) -> List[Pair]:
        out: List[Pair] = []
        rq, dq, tol = self._q["rgb"], self._q["depth"], self.tolerance_ns
        while rq and dq:
            r_ns, d_ns = rq[0][0], dq[0][0]
            if d_ns < r_ns - tol:
                dq.pop(0)
                self.dropped["depth"] += 1
                continue
            if r_ns < d_ns - tol:
                rq.pop(0)
                self.dropped["rgb"] += 1
                continue
            best = 0
            for j in range(1, len(dq)):
                if dq[j][0] > r_ns + tol:
                    break
                if abs(dq[j][0] - r_ns) < abs(dq[best][0] - r_ns):
                    best = j
            self.dropped["depth"] += best  # older depth messages passed over for a closer one
            r = rq.pop(0)
            d = dq[best]
            del dq[: best + 1]
            out.append(Pair(r[2], d[2], r[0], d[0]))
            self.paired += 1
        return out

    def pending(self) -> Dict[str, int]:
        return {s: len(q) for s, q in self._q.items()}

    def finish(self) -> Dict[str, int]:
        """End of stream: whatever still waits can never pair; count it as dropped."""
        for s, q in self._q.items():
            self.dropped[s] += len(q)
            q.clear()
        return dict(self.dropped)

    def describe(self) -> str:
        return (f"paired {self.paired}; dropped {self.dropped['rgb']} of {self.received['rgb']} colour and "
                f"{self.dropped['depth']} of {self.received['depth']} depth messages "
                f"(no partner within {self.tolerance_ns / 1e6:g} ms)")

"""Test doubles for the ROS 2 node: recorded messages from a bag, a recording publisher, a clock."""
from pathlib import Path
from typing import List, Tuple


def recorded_messages(bag, topics=None) -> List[Tuple[str, object]]:
    """(topic, message) in log order from a rosbag2 bag, deserialised with rosbags: what the
    node's subscriptions would have received."""
    from rosbags.rosbag2 import Reader

    from dynmm_edge.io.rosmsg import RosbagsMessages
    msgs = RosbagsMessages()
    out = []
    with Reader(Path(bag)) as reader:
        cons = [c for c in reader.connections if topics is None or c.topic in topics]
        for con, _, raw in reader.messages(connections=cons):
            out.append((con.topic, msgs.deserialize(raw, con.msgtype)))
    return out


class RecordingPublisher:
    """publish(key, msg) callable that keeps everything, by key."""

    def __init__(self):
        self.sent: List[Tuple[str, object]] = []

    def __call__(self, key, msg):
        self.sent.append((key, msg))

    def of(self, key):
        return [m for k, m in self.sent if k == key]


class FakeClock:
    """clock() callable that advances only when told (seconds)."""

    def __init__(self, start: float = 100.0):
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> None:
        self.now += float(dt)

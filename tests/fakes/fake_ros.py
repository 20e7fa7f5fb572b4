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


# ------------------------------------------------------------------ a fake rclpy (enough for apps/ros2_cmd.py)
class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class _Time(_Obj):
    def __init__(self, sec=0, nanosec=0):
        super().__init__(sec=sec, nanosec=nanosec)


class _Header(_Obj):
    def __init__(self):
        super().__init__(stamp=_Time(), frame_id="")


def _msg_class(cls_name, **defaults):
    def init(self, **kw):
        self.header = _Header()
        self.__dict__.update({**{k: (v() if callable(v) else v) for k, v in defaults.items()}, **kw})
    return type(cls_name, (), {"__init__": init})


def fake_ros_modules():
    """(rclpy, sensor_msgs.msg, std_msgs.msg, diagnostic_msgs.msg) stand-ins, plus the rclpy
    submodules to put into sys.modules. rclpy.spin(node) delivers `node.inbox` to the subscriptions."""
    import types
    sensor = types.SimpleNamespace(Image=_msg_class("Image", height=0, width=0, encoding="", is_bigendian=0, step=0,
                                                    data=list),
                                   CompressedImage=_msg_class("CompressedImage", format="", data=list))
    std = types.SimpleNamespace(String=_msg_class("String", data=""))
    diag = types.SimpleNamespace(DiagnosticArray=_msg_class("DiagnosticArray", status=list),
                                 DiagnosticStatus=_msg_class("DiagnosticStatus", level=b"\x00", name="", message="",
                                                             hardware_id="", values=list),
                                 KeyValue=_msg_class("KeyValue", key="", value=""))
    state = {"ok": False, "args": None, "nodes": []}

    class Node:
        def __init__(self, name):
            self.name, self.params, self.pubs, self.subs = name, {}, {}, {}
            self.overrides = dict(a.split(":=", 1) for a in _param_args(state["args"]))
            state["nodes"].append(self)

        def declare_parameter(self, name, default):
            value = self.overrides.get(name, default)
            if not isinstance(default, str) and name in self.overrides:
                value = type(default)(float(value)) if not isinstance(default, bool) else value == "true"
            self.params[name] = value
            return _Obj(value=value)

        def create_publisher(self, msg_type, topic, qos):
            self.pubs[topic] = _Obj(type=msg_type, qos=qos, sent=[])
            self.pubs[topic].publish = self.pubs[topic].sent.append
            return self.pubs[topic]

        def create_subscription(self, msg_type, topic, callback, qos):
            self.subs[topic] = _Obj(type=msg_type, callback=callback, qos=qos)

        def get_name(self):
            return self.name

        def get_logger(self):
            return _Obj(info=lambda *a: None)

        def get_clock(self):
            import time
            return _Obj(now=lambda: _Obj(nanoseconds=time.monotonic_ns()))

        def destroy_node(self):
            self.destroyed = True

    def init(args=None):
        state["ok"], state["args"] = True, list(args or [])

    def spin(node):
        for topic, msg, wait_for in node.inbox:
            node.subs[topic].callback(msg)
            if wait_for:
                wait_for()

    def shutdown():
        state["ok"] = False

    rclpy = types.SimpleNamespace(init=init, ok=lambda: state["ok"], spin=spin, shutdown=shutdown, state=state)
    qos = types.SimpleNamespace(QoSProfile=_Obj, ReliabilityPolicy=_Obj(BEST_EFFORT="best_effort"),
                                HistoryPolicy=_Obj(KEEP_LAST="keep_last"))
    submodules = {"rclpy": rclpy, "rclpy.node": types.SimpleNamespace(Node=Node), "rclpy.qos": qos}
    return (rclpy, sensor, std, diag), submodules


def _param_args(argv):
    out, it = [], iter(argv or [])
    for a in it:
        if a == "-p":
            out.append(next(it))
    return out


def to_rclpy_image(msg, sensor):
    """A rosbags Image as rclpy would deliver it (data as array.array('B'))."""
    import array
    m = sensor.Image(height=msg.height, width=msg.width, encoding=msg.encoding, is_bigendian=msg.is_bigendian,
                     step=msg.step, data=array.array("B", bytes(msg.data)))
    m.header.stamp.sec, m.header.stamp.nanosec = msg.header.stamp.sec, msg.header.stamp.nanosec
    m.header.frame_id = msg.header.frame_id
    return m

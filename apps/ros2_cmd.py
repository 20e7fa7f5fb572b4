"""`dynmm-edge ros2 MODEL [--ros-args ...]`: the segmentation node for a robot running ROS 2.

Subscribes to colour and aligned depth (sensor QoS: best effort, keep last 1), pairs them by stamp,
segments the newest pair (older ones are dropped, never queued) and publishes PREFIX/labels,
PREFIX/overlay, PREFIX/status and /diagnostics. Everything but the rclpy wiring lives in
dynmm_edge.io.rosnode and is tested without ROS; rclpy is imported only here, only when run.
"""
import argparse
import array
import logging
import threading

from dynmm_edge.errors import DynMMError

EPILOG = """examples (in a shell where ROS 2 Humble or Jazzy is sourced: source /opt/ros/humble/setup.bash):
  dynmm-edge ros2 demo
  dynmm-edge ros2 models/r34 --backend trt --precision gate=fp16,depth=int8
  dynmm-edge ros2 demo --ros-args -p policy:=budget:0.4 -p rgb_topic:=/camera/color/image_raw \\
      -p depth_topic:=/camera/aligned_depth_to_color/image_raw -r __node:=seg_front
parameters: policy, backend, precision, rgb_topic, depth_topic, prefix, tolerance_ms, overlay
"""

INSTALL_HINT = ("rclpy is not importable, so the ROS 2 node cannot start: install ROS 2 (Humble on JetPack 5/Ubuntu "
                "22.04, Jazzy on JetPack 6+/Ubuntu 24.04; e.g. apt install ros-humble-ros-base), run "
                "`source /opt/ros/<distro>/setup.bash` in this shell and use the Python that ROS was built for "
                "(python3 -m pip install 'dynmm-edge[ros]'); rosbag2:// sources and sinks need no ROS")


class RosNotAvailable(DynMMError):
    """rclpy (or the message packages) cannot be imported: ROS 2 is not installed or not sourced."""


def add_parser(sub) -> None:
    from dynmm_edge.apps.run_cmd import add_common_runtime_args
    p = sub.add_parser("ros2", help="ROS 2 node: colour + aligned depth topics in, labels/overlay/status out",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__, epilog=EPILOG)
    from dynmm_edge.apps.common import add_model
    add_model(p)
    add_common_runtime_args(p)
    p.add_argument("--rgb-topic", default=None, help="colour topic (default /camera/camera/color/image_raw)")
    p.add_argument("--depth-topic", default=None,
                   help="aligned depth topic (default /camera/camera/aligned_depth_to_color/image_raw)")
    p.add_argument("--ros-args", dest="ros_args", nargs=argparse.REMAINDER, default=None,
                   help="everything after it goes to rclpy (-p NAME:=VALUE, -r remaps, --log-level ...)")
    p.set_defaults(func=run)


def import_rclpy():
    """rclpy and the message modules, or RosNotAvailable with the install line."""
    try:
        import rclpy
        from diagnostic_msgs import msg as diagnostic_msgs
        from sensor_msgs import msg as sensor_msgs
        from std_msgs import msg as std_msgs
    except ImportError as exc:
        raise RosNotAvailable(f"{INSTALL_HINT} ({exc})") from exc
    return rclpy, sensor_msgs, std_msgs, diagnostic_msgs


class RclpyMessages:
    """The message factory of dynmm_edge.io.rosnode, with rclpy's generated classes."""

    def __init__(self, sensor_msgs, std_msgs, diagnostic_msgs):
        self.sensor, self.std, self.diag = sensor_msgs, std_msgs, diagnostic_msgs

    def _header(self, msg, ns, frame_id):
        msg.header.stamp.sec, msg.header.stamp.nanosec = ns // 1_000_000_000, ns % 1_000_000_000
        msg.header.frame_id = frame_id

    def image(self, ns, frame_id, arr, encoding):
        from dynmm_edge.io.rosmsg import image_fields
        f = image_fields(arr, encoding)
        m = self.sensor.Image()
        self._header(m, int(ns), frame_id)
        m.height, m.width, m.encoding, m.is_bigendian, m.step = f["height"], f["width"], encoding, 0, f["step"]
        m.data = array.array("B", f["data"].tobytes())  # the generated setter's fast path
        return m

    def string(self, text):
        m = self.std.String()
        m.data = text
        return m

    def diagnostics(self, ns, name, level, message, values):
        d = self.diag
        st = d.DiagnosticStatus(level=bytes([level]), name=name, message=message,
                                values=[d.KeyValue(key=str(k), value=str(v)) for k, v in values.items()])
        arr = d.DiagnosticArray(status=[st])
        self._header(arr, int(ns), "")
        return arr


def _params(node, args):
    from dynmm_edge.io.rosnode import NodeConfig
    base = NodeConfig()
    defaults = {"policy": args.policy or "", "backend": args.backend, "precision": args.precision or "",
                "rgb_topic": args.rgb_topic or base.rgb_topic, "depth_topic": args.depth_topic or base.depth_topic,
                "prefix": base.prefix, "tolerance_ms": base.tolerance_ms, "overlay": base.overlay}
    return {k: node.declare_parameter(k, v).value for k, v in defaults.items()}


def build_node(rclpy, msgs_mods, args, open_session):
    """The rclpy Node: parameters -> session -> core; subscriptions and publishers wired to it."""
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    from dynmm_edge.apps.run_cmd import backend_options
    from dynmm_edge.io.rosnode import NodeConfig, SegmentationNodeCore, image_type_of
    from dynmm_edge.io.rosmsg import COMPRESSED

    sensor_msgs, std_msgs, diagnostic_msgs = msgs_mods
    node = Node("dynmm_edge")
    p = _params(node, args)
    args.backend = p["backend"]
    session = open_session(args.model, backend=p["backend"], precision=p["precision"] or None,
                           policy=p["policy"] or None, backend_opts=backend_options(args))
    cfg = NodeConfig(rgb_topic=p["rgb_topic"], depth_topic=p["depth_topic"], prefix=p["prefix"],
                     tolerance_ms=float(p["tolerance_ms"]), overlay=bool(p["overlay"]), name=node.get_name())
    sensor_qos = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST, depth=1)
    out_types = {"labels": sensor_msgs.Image, "overlay": sensor_msgs.Image, "status": std_msgs.String,
                 "diagnostics": diagnostic_msgs.DiagnosticArray}
    pubs = {k: node.create_publisher(t, cfg.topic(k), 10 if k == "diagnostics" else sensor_qos)
            for k, t in out_types.items()}
    m = session.manifest
    core = SegmentationNodeCore(session.infer, lambda k, msg: pubs[k].publish(msg),
                                RclpyMessages(sensor_msgs, std_msgs, diagnostic_msgs), cfg,
                                palette=[tuple(c) for c in m.palette], num_classes=len(m.classes),
                                clock=lambda: node.get_clock().now().nanoseconds / 1e9)

    def msg_type(topic):
        return sensor_msgs.CompressedImage if image_type_of(topic) == COMPRESSED else sensor_msgs.Image
    node.create_subscription(msg_type(cfg.rgb_topic), cfg.rgb_topic, core.on_rgb, sensor_qos)
    node.create_subscription(msg_type(cfg.depth_topic), cfg.depth_topic, core.on_depth, sensor_qos)
    node.get_logger().info(f"segmenting {cfg.rgb_topic} + {cfg.depth_topic} -> {cfg.topic('labels')} "
                           f"({session.describe()})")
    return node, core, session


def run(args, rclpy_modules=None, open_session=None) -> int:
    rclpy, *msgs_mods = rclpy_modules or import_rclpy()  # fail fast, before loading a model
    if open_session is None:
        from dynmm_edge.models import open_session
    ros_args = [] if args.ros_args is None else ["--ros-args"] + list(args.ros_args)
    rclpy.init(args=["dynmm-edge"] + ros_args)
    stop = threading.Event()
    node = session = worker = None
    try:
        node, core, session = build_node(rclpy, msgs_mods, args, open_session)

        def infer_loop():
            while not stop.is_set() and rclpy.ok():
                core.step(timeout=0.1)
        worker = threading.Thread(target=infer_loop, name="dynmm-infer", daemon=True)
        worker.start()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if worker is not None:
            worker.join(timeout=5)
        if node is not None:
            logging.getLogger(__name__).info("ros2 node: %s", core.stats())
            node.destroy_node()
        if session is not None:
            session.close()
        if rclpy.ok():
            rclpy.shutdown()
    return 0

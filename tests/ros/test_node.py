"""The ROS 2 node's pure part driven by recorded messages (no rclpy), and the CLI without ROS."""
import json
import sys

import numpy as np
import pytest

from dynmm_edge.io.rosmsg import RosbagsMessages, stamp_ns
from dynmm_edge.io.rosnode import ERROR, OK, NodeConfig, SegmentationNodeCore, image_type_of
from dynmm_edge.types import Result
from dynmm_edge.testing import FakeClock
from tests.fakes.fake_ros import RecordingPublisher, recorded_messages

COLOR = "/camera/camera/color/image_raw"
DEPTH = "/camera/camera/aligned_depth_to_color/image_raw"


class CountingInfer:
    """infer(Frame) -> Result with labels = (depth > 1 m), path = frame index; keeps the frames."""

    def __init__(self):
        self.frames = []

    def __call__(self, frame):
        self.frames.append(frame)
        labels = (frame.depth.astype(np.float64) * frame.depth_scale_m > 1.0).astype(np.int64)
        return Result(frame_id=frame.frame_id, labels=labels, path=frame.frame_id % 3, times_ms={"total": 2.0},
                      branches_run=("gate", "trunk"), depth_fraction=0.25, frame=frame)


def _core(infer, clock, **cfg):
    pub = RecordingPublisher()
    core = SegmentationNodeCore(infer, pub, RosbagsMessages(), NodeConfig(**cfg), palette=None, num_classes=40,
                                clock=clock)
    return core, pub


def _deliver(core, msgs):
    for topic, msg in msgs:
        if topic == COLOR:
            core.on_rgb(msg)
        elif topic == DEPTH:
            core.on_depth(msg)


def test_callbacks_publish_labels_overlay_status_with_input_stamps(make_bag):
    bag = make_bag("live", n=4, fps=10.0)
    msgs = recorded_messages(bag)
    colour_stamps = [stamp_ns(m) for t, m in msgs if t == COLOR]
    infer, clock = CountingInfer(), FakeClock()
    core, pub = _core(infer, clock, diagnostics_period_s=1.0)
    for topic, msg in msgs:  # a fast model: one step after every message
        _deliver(core, [(topic, msg)])
        core.step()
        clock.advance(0.05)
    assert len(infer.frames) == 4 and [f.frame_id for f in infer.frames] == [0, 1, 2, 3]
    labels, overlays, status = pub.of("labels"), pub.of("overlay"), pub.of("status")
    assert [stamp_ns(m) for m in labels] == colour_stamps == [stamp_ns(m) for m in overlays]
    assert labels[0].encoding == "mono8" and overlays[0].encoding == "rgb8"
    assert {m.header.frame_id for m in labels} == {"camera_color_optical_frame"}
    f = infer.frames[2]
    got = np.frombuffer(labels[2].data.tobytes(), np.uint8).reshape(f.rgb.shape[:2])
    assert np.array_equal(got, (f.depth * 0.001 > 1.0).astype(np.uint8))
    assert [json.loads(m.data)["path"] for m in status] == [0, 1, 2, 0]
    diag = pub.of("diagnostics")
    assert len(diag) == 1 and diag[0].status[0].level == OK  # first frame; then at most once per second
    values = {kv.key: kv.value for kv in diag[0].status[0].values}
    assert values["frames"] == "1" and values["depth_skip_share"] == "0.75"
    clock.advance(1.0)
    _deliver(core, [(COLOR, msgs[2][1])])  # an old colour stamp again: nothing pairs, nothing to process
    assert core.step() is None
    core._maybe_diagnostics()  # what the node's period would trigger
    values = {kv.key: kv.value for kv in pub.of("diagnostics")[-1].status[0].values}
    # a pair completes on every 4th message (2 camera_info, colour, depth) = every 0.2 s of fake clock
    assert values["frames"] == "4" and float(values["fps"]) == pytest.approx(5.0)


def test_slow_model_gets_the_newest_pair_and_stale_pairs_are_dropped(make_bag):
    msgs = recorded_messages(make_bag("burst", n=5))
    infer = CountingInfer()
    core, pub = _core(infer, FakeClock())
    _deliver(core, msgs)  # five pairs arrive while the model is busy
    result = core.step()
    assert result is not None and infer.frames[0].stamp_ns == stamp_ns([m for t, m in msgs if t == COLOR][-1])
    assert core.step() is None and len(pub.of("labels")) == 1
    assert core.stats()["dropped_stale"] == 4 and core.stats()["frames"] == 1


def test_unusable_messages_are_reported_in_diagnostics_and_the_node_lives_on():
    m = RosbagsMessages()
    core, pub = _core(CountingInfer(), FakeClock())
    t = 1_000_000_000
    core.on_rgb(m.image(t, "cam", np.zeros((4, 6, 3), np.uint8), "rgb8"))
    core.on_depth(m.image(t, "cam", np.zeros((4, 6), np.uint8), "mono8"))
    assert core.step() is None
    diag = pub.of("diagnostics")[-1].status[0]
    assert diag.level == ERROR and f"topic {DEPTH}: unsupported depth encoding 'mono8'" in diag.message
    core.on_rgb(m.image(2 * t, "cam", np.zeros((4, 6, 3), np.uint8), "rgb8"))
    core.on_depth(m.image(2 * t, "cam", np.full((4, 6), 2000, np.uint16), "16UC1"))
    assert core.step() is not None and len(pub.of("labels")) == 1 and core.stats()["errors"] == 1


def test_topic_types_and_output_names():
    assert image_type_of("/cam/color/image_raw/compressed") == "sensor_msgs/msg/CompressedImage"
    assert image_type_of(DEPTH + "/compressedDepth") == "sensor_msgs/msg/CompressedImage"
    assert image_type_of(COLOR) == "sensor_msgs/msg/Image"
    cfg = NodeConfig(prefix="robot1/seg/")
    assert cfg.topic("labels") == "/robot1/seg/labels" and cfg.topic("diagnostics") == "/diagnostics"


def test_ros2_command_without_rclpy_says_how_to_install(monkeypatch, capsys):
    from dynmm_edge.apps.cli import main
    monkeypatch.setitem(sys.modules, "rclpy", None)  # absent even where ROS 2 is sourced
    assert main(["ros2", "demo", "--ros-args", "-p", "policy:=fixed:3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dynmm-edge ros2: error: rclpy is not importable")
    assert "Humble" in err[0] and "Jazzy" in err[0] and "source /opt/ros/<distro>/setup.bash" in err[0]


def test_rclpy_shell_wires_parameters_qos_topics_and_publishes(make_bag, monkeypatch):
    """apps/ros2_cmd.py against a fake rclpy: parameters from --ros-args, sensor QoS, remapped
    topics, and every recorded pair published with its stamp through rclpy-style messages."""
    import time
    import types

    from dynmm_edge.apps import ros2_cmd
    from dynmm_edge.apps.cli import build_parser
    from tests.fakes.fake_ros import fake_ros_modules, to_rclpy_image
    mods, submodules = fake_ros_modules()
    for name, mod in submodules.items():
        monkeypatch.setitem(sys.modules, name, mod)
    rclpy, sensor = mods[0], mods[1]
    old = "/camera/color/image_raw", "/camera/aligned_depth_to_color/image_raw"
    msgs = [(t, m) for t, m in recorded_messages(make_bag("shell", n=3, namespace="/camera")) if t in old]
    opened = {}

    class FakeSession:
        manifest = types.SimpleNamespace(palette=[(1, 2, 3)] * 40, classes=[str(i) for i in range(40)])
        infer = CountingInfer()

        def describe(self):
            return "fake"

        def close(self):
            opened["closed"] = True

    def open_session(model, **kw):
        opened.update(model=model, **kw)
        return FakeSession()

    args = build_parser().parse_args(["ros2", "demo", "--policy", "fixed:1", "--ros-args", "-p", "policy:=fixed:3",
                                      "-p", f"rgb_topic:={old[0]}", "-p", f"depth_topic:={old[1]}",
                                      "-p", "prefix:=/seg_front", "-p", "tolerance_ms:=5.0"])

    def published(node, topic):
        return node.pubs[topic].sent

    real_spin = rclpy.spin

    def spin(node):
        def wait_one(k):
            def wait():
                deadline = time.monotonic() + 10
                while len(published(node, "/seg_front/labels")) < k and time.monotonic() < deadline:
                    time.sleep(0.005)
            return wait
        node.inbox, k = [], 0
        for topic, m in msgs:
            k += topic == old[1]
            node.inbox.append((topic, to_rclpy_image(m, sensor), wait_one(k) if topic == old[1] else None))
        real_spin(node)
    rclpy.spin = spin

    assert ros2_cmd.run(args, rclpy_modules=mods, open_session=open_session) == 0
    node = rclpy.state["nodes"][0]
    assert rclpy.state["args"][1:4] == ["--ros-args", "-p", "policy:=fixed:3"]
    assert opened["policy"] == "fixed:3" and opened["backend"] == "ort" and opened["closed"]
    assert sorted(node.subs) == sorted(old) and node.subs[old[0]].type is sensor.Image
    qos = node.subs[old[0]].qos
    assert (qos.reliability, qos.history, qos.depth) == ("best_effort", "keep_last", 1)
    labels = published(node, "/seg_front/labels")
    assert len(labels) == 3 and labels[0].encoding == "mono8" and isinstance(labels[0].data, __import__("array").array)
    assert [(m.header.stamp.sec, m.header.stamp.nanosec) for m in labels] == \
        [(m.header.stamp.sec, m.header.stamp.nanosec) for t, m in msgs if t == old[0]]
    assert len(published(node, "/seg_front/overlay")) == 3 and json.loads(
        published(node, "/seg_front/status")[2].data)["frame"] == 2
    diag = published(node, "/diagnostics")[0].status[0]
    assert diag.level == bytes([OK]) and diag.name == "dynmm_edge: segmentation"
    assert getattr(node, "destroyed", False) and not rclpy.ok()

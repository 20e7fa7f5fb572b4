"""rosbag2 in and out: realsense-ros bags through `dynmm-edge run`, pairing, errors, atomic output."""
import json
import os

import numpy as np
import pytest

from dynmm_edge.errors import DataError
from dynmm_edge.io.rosbag2 import AtomicBag, Rosbag2Sink, Rosbag2Source
from dynmm_edge.io.rosmsg import RosbagsMessages, image_to_depth, stamp_ns
from dynmm_edge.io.sources import open_source
from dynmm_edge.types import Frame, Result
from dynmm_edge.viz.overlay import resize_nearest
from tests.fakes.fake_ros import recorded_messages

NEW = "/camera/camera"
COLOR, DEPTH = f"{NEW}/color/image_raw", f"{NEW}/aligned_depth_to_color/image_raw"
T0 = 1_700_000_000_000_000_000


def _custom_bag(path, rgb_ns, depth_ns, rgb_enc="rgb8", depth_enc="16UC1", rgb_topic=COLOR, depth_topic=DEPTH):
    """Colour/depth messages at the given stamps (None topic: leave that stream out)."""
    with AtomicBag(path) as bag:
        m = bag.msgs
        for t in rgb_ns:
            bag.write(rgb_topic, m.image(t, "cam", np.full((6, 8, 3), 50, np.uint8), rgb_enc), t)
        if depth_topic:
            for t in depth_ns:
                arr = np.full((6, 8), 1500, np.uint16) if depth_enc != "32FC1" else np.full((6, 8), 1.5, np.float32)
                bag.write(depth_topic, m.image(t, "cam", arr, depth_enc), t)
    return path


def _read_outputs(bag):
    msgs = recorded_messages(bag)
    by = {}
    for topic, msg in msgs:
        by.setdefault(topic, []).append(msg)
    return by


@pytest.mark.parametrize("storage,size,namespace", [("mcap", (256, 192), NEW), ("sqlite3", (128, 96), "/camera")])
def test_round_trip_through_run_every_frame_once(make_bag, tmp_path, storage, size, namespace, capsys):
    from dynmm_edge.apps.cli import main
    from dynmm_edge.models import open_session
    n = 5 if storage == "mcap" else 4
    bag = make_bag(f"in_{storage}", n=n, width=size[0], height=size[1], storage=storage, namespace=namespace)
    out = tmp_path / f"out_{storage}"
    rc = main(["run", "demo", "--source", f"rosbag2://{bag}", "--sink", f"rosbag2://{out}?storage={storage}",
               "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    assert f"frames: {n} (dropped 0" in capsys.readouterr().out
    assert sorted(p.suffix for p in out.iterdir()) == [".db3" if storage == "sqlite3" else ".mcap", ".yaml"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial folder left behind

    inputs = recorded_messages(bag, {f"{namespace}/color/image_raw"})
    outs = _read_outputs(out)
    labels, overlays, status = outs["/segmentation/labels"], outs["/segmentation/overlay"], outs["/segmentation/status"]
    assert len(labels) == len(overlays) == len(status) == n
    assert [stamp_ns(m) for m in labels] == [stamp_ns(m) for _, m in inputs] == [stamp_ns(m) for m in overlays]
    assert {m.header.frame_id for m in labels} == {"camera_color_optical_frame"}
    # the bag's labels are what a Session run directly on the same frames gives
    with open_session("demo", backend="ort", backend_opts={"threads": 1}) as sess, Rosbag2Source(bag) as src:
        for frame, lab_msg, st_msg in zip(src, labels, status):
            res = sess.infer(frame)
            assert lab_msg.encoding == "mono8" and (lab_msg.width, lab_msg.height) == size
            got = np.frombuffer(lab_msg.data.tobytes(), np.uint8).reshape(size[1], size[0])
            assert np.array_equal(got, resize_nearest(res.labels, size[1], size[0]).astype(np.uint8))
            st = json.loads(st_msg.data)
            assert st["frame"] == frame.frame_id and st["path"] == res.path and st["stamp_ns"] == frame.stamp_ns
            assert "trunk" in st["times_ms"] and st["branches_run"] == list(res.branches_run)


def test_source_carries_stamps_frame_ids_intrinsics_and_depth_scale(make_bag):
    bag = make_bag("b32", n=3, depth_encoding="32FC1", rgb_encoding="bgr8", fps=10.0)
    ref = make_bag("b16", n=3, fps=10.0)
    with open_source(str(bag)) as src, open_source(f"rosbag2://{ref}") as src16:
        frames, ref_frames = list(src), list(src16)
    assert [f.frame_id for f in frames] == [0, 1, 2]
    assert [f.stamp_ns for f in frames] == [T0, T0 + 100_000_000, T0 + 200_000_000]
    assert frames[1].timestamp_s == pytest.approx((T0 + 1e8) / 1e9)
    assert frames[0].sensor_frame == "camera_color_optical_frame" and frames[0].intrinsics is not None
    assert frames[0].depth.dtype == np.float32 and frames[0].depth_scale_m == 1.0
    assert ref_frames[0].depth.dtype == np.uint16 and ref_frames[0].depth_scale_m == 0.001
    assert np.allclose(frames[0].depth * 1000.0, ref_frames[0].depth, atol=0.01)
    assert np.array_equal(frames[2].rgb, ref_frames[2].rgb)  # bgr8 came back as RGB


def test_unpaired_messages_are_dropped_and_reported(tmp_path, caplog):
    ms = 1_000_000
    rgb = [T0 + i * 33 * ms for i in range(5)]
    depth = [t + 2 * ms for i, t in enumerate(rgb) if i != 2]  # depth frame 2 lost
    bag = _custom_bag(tmp_path / "gap", rgb, depth)
    with Rosbag2Source(bag, tolerance_ms=5) as src:
        frames = list(src)
    assert [f.stamp_ns for f in frames] == [rgb[0], rgb[1], rgb[3], rgb[4]]
    assert [f.meta["depth_stamp_ns"] for f in frames] == depth
    assert src.sync.dropped == {"rgb": 1, "depth": 0}
    assert "dropped 1 of 5 colour and 0 of 4 depth" in caplog.text


def test_mismatched_stamps_name_both_topics(tmp_path, make_bag, capsys):
    bag = make_bag("late", n=3, depth_offset_ns=1_000_000_000)
    with pytest.raises(DataError, match=rf"no colour message on {COLOR} pairs with a depth message on {DEPTH} "
                                        r"within 15 ms .*closest gap 933.3 ms"):
        list(Rosbag2Source(bag))
    from dynmm_edge.apps.cli import main
    assert main(["run", "demo", "--source", f"rosbag2://{bag}?tolerance_ms=5", "--sink",
                 f"rosbag2://{tmp_path / 'never'}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dynmm-edge run: error:") and "within 5 ms" in err
    assert not (tmp_path / "never").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_missing_depth_topic_lists_the_topics_that_exist(tmp_path, make_bag):
    only_colour = _custom_bag(tmp_path / "c", [T0], [], depth_topic=None)
    with pytest.raises(DataError, match=rf"no depth topic found .*image topics in the bag: {COLOR}; "
                                        r"all topics: .*pick one with \?depth=TOPIC"):
        Rosbag2Source(only_colour)
    bag = make_bag("full", n=1)
    with pytest.raises(DataError, match=r"no depth topic '/depth/nope'; image topics in the bag: "
                                        rf"{DEPTH}, {COLOR}"):
        open_source(f"rosbag2://{bag}?depth=/depth/nope")
    with pytest.raises(DataError, match=r"depth topic /camera/camera/color/camera_info has type "
                                        r"sensor_msgs/msg/CameraInfo"):
        open_source(f"rosbag2://{bag}?depth={NEW}/color/camera_info")
    with pytest.raises(DataError, match=r"unknown option\(s\) \['colour'\]"):
        open_source(f"rosbag2://{bag}?colour=/x")


def test_unsupported_encodings_name_the_topic(tmp_path):
    bag = _custom_bag(tmp_path / "enc", [T0], [T0], depth_enc="mono8")
    with pytest.raises(DataError, match=rf"topic {DEPTH}: unsupported depth encoding 'mono8'"):
        list(Rosbag2Source(bag))
    bag = _custom_bag(tmp_path / "enc2", [T0], [T0], rgb_enc="mono16")
    with pytest.raises(DataError, match=rf"topic {COLOR}: unsupported colour encoding 'mono16'"):
        list(Rosbag2Source(bag))


@pytest.mark.parametrize("storage,fname", [("mcap", "trunc.mcap"), ("sqlite3", "trunc.db3")])
def test_truncated_bag_names_the_file(make_bag, storage, fname):
    bag = make_bag("trunc", n=3, storage=storage)
    f = bag / fname
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=rf"rosbag2 {bag} \(storage file {fname}\): cannot read .*truncated or corrupt"):
        list(open_source(f"rosbag2://{bag}"))


def test_not_a_bag_and_missing_path(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="no metadata.yaml"):
        open_source(f"rosbag2://{tmp_path / 'plain'}")
    with pytest.raises(DataError, match="no such file or directory"):
        open_source(f"rosbag2://{tmp_path / 'nope'}")


def _result(i, labels, frame=None):
    return Result(frame_id=i, labels=labels, path=1, times_ms={"total": 1.0}, branches_run=("gate", "trunk"),
                  frame=frame)


def test_sink_abort_leaves_nothing_and_never_overwrites(tmp_path):
    frame = Frame(0, np.zeros((4, 6, 3), np.uint8), np.ones((4, 6), np.uint16), stamp_ns=T0, sensor_frame="cam")
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with Rosbag2Sink(out, class_names=["a", "b"]) as sink:
            sink.write(_result(0, np.ones((4, 6), np.int64), frame))
            assert any(p.name.startswith(".out.") for p in tmp_path.iterdir())  # work happens out of sight
            raise RuntimeError("model crashed")
    assert list(tmp_path.iterdir()) == []
    out.mkdir()
    with pytest.raises(DataError, match="already exists; rosbag2 output never overwrites"):
        Rosbag2Sink(out)
    with pytest.raises(DataError, match="storage must be one of"):
        Rosbag2Sink(tmp_path / "x", storage="bag")


def test_sink_writes_16uc1_labels_above_256_classes_without_a_frame(tmp_path):
    out = tmp_path / "many"
    lab = np.array([[0, 300], [299, 1]], np.int64)
    with Rosbag2Sink(out, class_names=[str(i) for i in range(400)], prefix="robot/seg") as sink:
        sink.write(_result(0, lab))
        sink.write(_result(1, lab))
    outs = _read_outputs(out)
    assert sorted(outs) == ["/robot/seg/labels", "/robot/seg/status"]  # no frame: no overlay
    msg = outs["/robot/seg/labels"][0]
    assert msg.encoding == "16UC1" and np.array_equal(image_to_depth(msg, "x")[0], lab)
    with pytest.raises(DataError, match="do not fit mono8"):
        with Rosbag2Sink(tmp_path / "few", class_names=["a"]) as sink:
            sink.write(_result(0, lab))
    assert not (tmp_path / "few").exists()


def test_synth_command_writes_realsense_shaped_bags(tmp_path, capsys):
    from dynmm_edge.apps.cli import main
    for storage in ("mcap", "sqlite3"):
        out = tmp_path / storage
        assert main(["synth", "--format", "rosbag2", "--storage", storage, "-o", str(out), "--frames", "3",
                     "--size", "32x24"]) == 0
        topics = {t for t, _ in recorded_messages(out)}
        assert topics == {COLOR, DEPTH, f"{NEW}/color/camera_info", f"{NEW}/aligned_depth_to_color/camera_info"}
        with open_source(str(out)) as src:
            assert len(list(src)) == 3
    assert main(["synth", "--format", "rosbag2", "-o", str(tmp_path / "mcap"), "--frames", "1"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert os.path.isdir(tmp_path / "mcap")

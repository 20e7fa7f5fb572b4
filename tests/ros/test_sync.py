"""ApproxTimeSync: the pairing shared by the rosbag2 source and the ROS 2 node."""
import pytest

from dynmm_edge.io.rossync import ApproxTimeSync

MS = 1_000_000


def _feed(sync, events):
    out = []
    for stream, t_ms in events:
        out += [(p.rgb, p.depth) for p in sync.push(stream, int(t_ms * MS), f"{stream[0]}{t_ms}")]
    return out


def test_pairs_equal_and_close_stamps_in_any_arrival_order():
    sync = ApproxTimeSync(5 * MS)
    pairs = _feed(sync, [("rgb", 0), ("depth", 0), ("depth", 34), ("rgb", 33), ("rgb", 66), ("depth", 70)])
    assert pairs == [("r0", "d0"), ("r33", "d34"), ("r66", "d70")]
    assert sync.finish() == {"rgb": 0, "depth": 0} and sync.paired == 3


def test_unpaired_messages_are_dropped_and_counted():
    sync = ApproxTimeSync(5 * MS)
    # depth frame 33 lost; colour frame 100 has no depth; a stray depth at 200 stays unpaired
    pairs = _feed(sync, [("rgb", 0), ("depth", 0), ("rgb", 33), ("rgb", 66), ("depth", 67),
                         ("rgb", 100), ("depth", 133), ("rgb", 133), ("depth", 200)])
    assert pairs == [("r0", "d0"), ("r66", "d67"), ("r133", "d133")]
    assert sync.finish() == {"rgb": 2, "depth": 1}
    assert "dropped 2 of 5 colour and 1 of 4 depth" in sync.describe()


def test_closest_depth_wins_when_several_are_queued():
    sync = ApproxTimeSync(10 * MS)
    pairs = _feed(sync, [("depth", 90), ("depth", 96), ("depth", 103), ("rgb", 100)])
    assert pairs == [("r100", "d103")]
    assert sync.dropped == {"rgb": 0, "depth": 2}


def test_bounded_queue_drops_oldest_and_nothing_pairs_reports_closest_gap():
    sync = ApproxTimeSync(5 * MS, queue_size=2)
    assert _feed(sync, [("rgb", 0), ("rgb", 33), ("rgb", 66)]) == []
    assert sync.dropped["rgb"] == 1 and sync.pending() == {"rgb": 2, "depth": 0}
    assert _feed(sync, [("depth", 1066)]) == []   # 1 s late: every colour message is now hopeless
    assert sync.dropped["rgb"] == 3 and sync.paired == 0
    assert sync.closest_ns == 1000 * MS


def test_late_message_is_inserted_in_stamp_order():
    sync = ApproxTimeSync(2 * MS)
    assert _feed(sync, [("depth", 33), ("depth", 0), ("rgb", 0), ("rgb", 33)]) == [("r0", "d0"), ("r33", "d33")]


def test_bad_arguments():
    with pytest.raises(ValueError):
        ApproxTimeSync(-1)
    with pytest.raises(ValueError):
        ApproxTimeSync(0).push("ir", 0, None)

"""Frame selection, zero-point check and report metrics: pure numpy / onnx, no model export."""
import numpy as np
import pytest

from dynmm_edge._lazy import available
from dynmm_edge.calibration.frames import choose_frames, held_out_frames, select_frames
from dynmm_edge.calibration.report import Confusion, sqnr_db
from dynmm_edge.errors import DataError
from dynmm_edge.types import Frame


def depth_frame(i, metres, size=(6, 8)):
    h, w = size
    depth = np.full((h, w), int(metres * 1000), np.uint16)
    depth[0, 0] = 0  # a hole: medians use valid pixels only
    return Frame(i, np.zeros((h, w, 3), np.uint8), depth)


def test_diverse_selection_spreads_over_depth_ranges():
    # 40 near frames first, then 10 far ones: 'first' sees only near, 'diverse' covers both ranges
    frames = [depth_frame(i, 0.5 + 0.01 * i) for i in range(40)] + [depth_frame(40 + i, 5.0 + 0.1 * i) for i in range(10)]
    first = select_frames(frames, 10, strategy="first")
    assert [f.frame_id for f in first] == list(range(10))
    sel = choose_frames(frames, 10, strategy="diverse", seed=1, depth_bins=4)
    meds = [i.median_depth_m for i in sel.infos]
    assert meds[0] == pytest.approx(0.5) and sel.scanned == 50
    far = [f for f in sel.frames if f.frame_id >= 40]
    assert 3 <= len(far) <= 7, [f.frame_id for f in sel.frames]
    assert list(sel.indices) == sorted(sel.indices) and len(set(sel.indices)) == 10
    again = choose_frames(frames, 10, strategy="diverse", seed=1, depth_bins=4)
    assert again.indices == sel.indices  # deterministic for a seed


def test_gate_paths_are_strata():
    frames = [depth_frame(i, 2.0) for i in range(30)]
    path_of = {i: (2 if i >= 27 else 5) for i in range(30)}  # rare path: 3 frames of 30
    sel = choose_frames(frames, 8, gate_fn=lambda f: path_of[f.frame_id])
    assert sel.strata == 2
    assert sum(1 for f in sel.frames if path_of[f.frame_id] == 2) == 3


def test_selection_errors_name_the_source():
    with pytest.raises(DataError, match=r"only 3 usable frame\(s\), calibration needs at least 8 \(requested 2"):
        select_frames([depth_frame(i, 1.0) for i in range(3)], 2)
    with pytest.raises(DataError, match=r"only 9 usable frame\(s\), calibration needs at least 12"):
        select_frames([depth_frame(i, 1.0) for i in range(9)], 12)
    bad = [depth_frame(i, 1.0) for i in range(9)]
    bad[4] = Frame(4, np.zeros((6, 8, 3), np.uint8), np.ones((6, 7), np.uint16))
    with pytest.raises(DataError, match=r"<list of 9 frames>: frame 4: rgb is 8x6 but depth is 7x6"):
        select_frames(bad, 8)
    with pytest.raises(ValueError, match="strategy"):
        select_frames(bad, 8, strategy="random")


def test_no_depth_stream_from_uri(tmp_path):
    if not available("cv2"):
        pytest.skip("opencv-python needed to write a dataset folder")
    import cv2
    rgb_dir = tmp_path / "rgb"
    rgb_dir.mkdir()
    (tmp_path / "depth").mkdir()
    for i in range(9):
        cv2.imwrite(str(rgb_dir / f"{i:04d}.png"), np.zeros((6, 8, 3), np.uint8))
    with pytest.raises(DataError, match="depth"):
        select_frames(str(tmp_path), 8)


def test_held_out_skips_calibration_indices():
    frames = [depth_frame(i, 1.0) for i in range(12)]
    out = held_out_frames(frames, 4, exclude=[0, 2, 3])
    assert [f.frame_id for f in out] == [1, 4, 5, 6]


@pytest.mark.skipif(not available("onnx"), reason="onnx needed")
def test_check_symmetric_flags_nonzero_and_uint8_zero_points(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from dynmm_edge.calibration.quantize import check_symmetric, qdq_nodes

    def model(zp_type, zp_value, path):
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="q0"),
                 helper.make_node("DequantizeLinear", ["q", "s"], ["y"], name="dq0")]
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
                              [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
                               helper.make_tensor("zp", zp_type, [], [zp_value])])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
        return path

    ok = model(TensorProto.INT8, 0, tmp_path / "ok.onnx")
    assert check_symmetric(ok) == [] and qdq_nodes(ok) == 2
    (msg,) = check_symmetric(model(TensorProto.INT8, 3, tmp_path / "asym.onnx"))
    assert "QuantizeLinear 'q0'" in msg and "is not 0" in msg and "asym.onnx" in msg
    msgs = check_symmetric(model(TensorProto.UINT8, 128, tmp_path / "u8.onnx"))
    assert len(msgs) == 2 and any("uint8" in m for m in msgs)


def test_confusion_and_sqnr():
    c = Confusion(3)
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 2]])
    c.add(gt, pred)
    m = c.metrics()
    # class 0: tp1 union3, class 1: tp2 union3, class 2: tp1 union2
    assert m["miou"] == pytest.approx(100 * (1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert m["pixel_acc"] == pytest.approx(100 * 4 / 6) and m["pixels"] == 6
    assert Confusion(3).metrics()["miou"] is None
    assert sqnr_db(100.0, 1.0) == pytest.approx(20.0)
    assert sqnr_db(1.0, 0.0) == 200.0

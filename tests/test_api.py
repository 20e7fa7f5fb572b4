"""The Python API: documented load() options, labels at camera resolution, depth-less frames,
output file permissions."""
import os
import stat

import numpy as np
import pytest

import dynmm_edge
from dynmm_edge.errors import DynMMError
from dynmm_edge.types import Frame

pytest.importorskip("onnxruntime")


def _frame(i, h, w, depth=True):
    from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld
    f = SyntheticWorld(SynthConfig(width=w, height=h, seed=5)).frame(i).to_frame()
    return Frame(f.frame_id, f.rgb, f.depth if depth else None, labels=f.labels)


def test_labels_at_camera_resolution_by_default_and_model_on_request():
    frame = _frame(0, 240, 320)
    with dynmm_edge.load("demo", threads=1) as s:
        r = s.infer(frame)
        assert r.labels.shape == (240, 320)
        m = s.manifest
    with dynmm_edge.load("demo", threads=1, labels_at="model") as s:
        small = s.infer(frame).labels
        assert small.shape == (m.height, m.width)
    from dynmm_edge.runtime.postprocess import resize_labels_nearest
    assert np.array_equal(r.labels, resize_labels_nearest(small, 240, 320))
    assert set(np.unique(r.labels)) <= set(np.unique(small))  # nearest: no new label values


def test_resize_labels_nearest_exact_pixels():
    from dynmm_edge.runtime.postprocess import resize_labels_nearest
    lab = np.arange(6, dtype=np.uint8).reshape(2, 3)
    up = resize_labels_nearest(lab, 4, 6)
    assert np.array_equal(up, np.repeat(np.repeat(lab, 2, 0), 2, 1))
    assert resize_labels_nearest(lab, 2, 3) is lab


def test_frame_without_depth_runs_rgb_only_path():
    with dynmm_edge.load("demo", threads=1) as s:
        r = s.infer(_frame(1, 192, 256, depth=False))
        assert r.path == 0 and r.branches_run == ("trunk",) and r.depth_fraction == 0.0
        r2 = s.infer(_frame(1, 192, 256))
        assert any(b.startswith("depth") for b in r2.branches_run)


def test_load_options_documented_and_unknown_ones_rejected():
    doc = dynmm_edge.load.__doc__
    for name in dynmm_edge.LOAD_OPTIONS:
        assert f"  {name}" in doc, name
    with pytest.raises(DynMMError, match=r"unknown option\(s\) thread; known: precision, policy, threads"):
        dynmm_edge.load("demo", thread=1)
    with pytest.raises(DynMMError, match=r"device= applies to backend torch, not 'ort'"):
        dynmm_edge.load("demo", device="cuda")
    with pytest.raises(DynMMError, match=r"labels_at='camera'"):
        dynmm_edge.load("demo", labels_at="camera")
    with dynmm_edge.load("demo", threads=1, policy="fixed:2") as s:
        assert s.infer(_frame(2, 96, 128)).path == 2


def test_video_and_json_outputs_have_normal_permissions(tmp_path):
    pytest.importorskip("cv2")
    from dynmm_edge.atomic import current_umask
    from dynmm_edge.io.sinks import open_sinks
    with dynmm_edge.load("demo", threads=1) as s:
        sinks = open_sinks([str(tmp_path / "v.mp4"), f"jsonl://{tmp_path / 's.jsonl'}"])
        sinks.write(s.infer(_frame(3, 96, 128)))
        sinks.close()
    want = 0o666 & ~current_umask()
    for name in ("v.mp4", "s.jsonl"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == want, name

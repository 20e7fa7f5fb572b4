"""`dynmm-edge run` end to end over a real .db3 recording: every frame once, labels = eager model."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")


def _recording(tmp_path, n=8):
    pytest.importorskip("pyrealsense2", reason="pyrealsense2 (or its libusb) unavailable")
    from dynmm_edge.data.recording import write_recording
    from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld
    world = SyntheticWorld(SynthConfig(width=96, height=80, hard_fraction=0.5, seed=5))
    path = tmp_path / "rec.db3"
    write_recording(path, [world.frame(i).to_frame() for i in range(n)], fps=30)
    return path


def test_run_db3_png_jsonl_every_frame_once_and_labels_match_eager(tmp_path, tiny_export):
    from dynmm_edge.apps.cli import main
    from dynmm_edge.data.preprocess import PreprocessConfig, preprocess
    from dynmm_edge.io.realsense import read_recording
    net, _, m = tiny_export
    rec = _recording(tmp_path)
    pngs, stats = tmp_path / "png", tmp_path / "stats.jsonl"
    rc = main(["run", str(m.folder), "--source", str(rec), "--sink", f"png://{pngs}", "--sink", f"jsonl://{stats}",
               "--policy", "argmax", "--threads", "1", "--summary-json", str(tmp_path / "summary.json")])
    assert rc == 0
    lines = [json.loads(x) for x in stats.read_text().splitlines()]
    frames = read_recording(rec)
    ids = [f.frame_id for f in frames]
    assert len(ids) == 8
    assert sorted(rec_["frame_id"] for rec_ in lines) == sorted(ids)  # every frame exactly once
    assert sorted(p.name for p in pngs.glob("*.png")) == sorted(f"{i:06d}.png" for i in ids)
    cfg = PreprocessConfig.from_dict(m.preprocess)
    by_id = {r["frame_id"]: r for r in lines}
    for f in frames:
        rgb, depth = preprocess(f.rgb, f.depth, f.depth_scale_m, cfg)
        with torch.no_grad():
            ref = net(torch.from_numpy(rgb), torch.from_numpy(depth))[0].argmax(0).numpy()
            gate_path = int(net.gate_logits(torch.from_numpy(rgb), torch.from_numpy(depth)).argmax())
        got = cv2.imread(str(pngs / f"{f.frame_id:06d}.png"), cv2.IMREAD_UNCHANGED)
        from dynmm_edge.runtime.postprocess import resize_labels_nearest  # labels come at camera resolution
        assert np.array_equal(got, resize_labels_nearest(ref.astype(np.uint8), *f.rgb.shape[:2])), f"frame {f.frame_id}"
        assert by_id[f.frame_id]["path"] == gate_path
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == 8 and summary["dropped"] == 0
    assert 0.0 <= summary["miou"] <= 1.0  # labels travelled with the recording (sidecar)


def test_run_counts_depth_branch_calls_per_path(tmp_path, tiny_export):
    from dynmm_edge.apps.cli import main
    _, _, m = tiny_export
    rec = _recording(tmp_path, n=6)
    stats = tmp_path / "s.jsonl"
    for policy, expect in (("fixed:rgb", 0), ("fixed:2", 2)):
        assert main(["run", str(m.folder), "--source", str(rec), "--sink", f"jsonl://{stats}", "--policy", policy,
                     "--summary-json", str(tmp_path / "sum.json")]) == 0
        summary = json.loads((tmp_path / "sum.json").read_text())
        calls = summary["branch_calls"]
        assert sum(v for k, v in calls.items() if k.startswith("depth")) == 6 * expect
        assert "gate" not in calls  # fixed policies never run the gate


def test_run_reports_bad_model_folder(tmp_path, capsys):
    from dynmm_edge.apps.cli import main
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.json").write_text('{"schema": "something-else"}')
    rc = main(["run", str(tmp_path / "m"), "--source", "synthetic://?frames=2"])
    assert rc == 1
    assert "schema" in capsys.readouterr().err

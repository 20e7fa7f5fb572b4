"""INT8 calibration end to end on the tiny-test export and small synthetic frames (ONNX Runtime CPU)."""
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dynmm_edge._lazy import available
from dynmm_edge.errors import BackendError, DataError, ManifestError
from dynmm_edge.types import Frame

pytestmark = pytest.mark.skipif(not (available("torch") and available("onnx") and available("onnxruntime")),
                                reason="needs torch, onnx and onnxruntime (pip install 'dynmm-edge[export]')")

W, H = 80, 60  # frames differ from the 64x64 model size: preprocess resizes


def folder_hashes(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    from dynmm_edge.export.exporter import export_model
    out = tmp_path_factory.mktemp("export") / "tiny"
    export_model("tiny-test", out)
    return out


@pytest.fixture
def model_dir(tiny_export, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(tiny_export, dst)
    return dst


@pytest.fixture(scope="module")
def synth_frames():
    from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld
    world = SyntheticWorld(SynthConfig(width=W, height=H, seed=3))
    return [world.frame(i).to_frame() for i in range(20)]


def check_calibrated(folder, branches, default="fp32"):
    from dynmm_edge.calibration.quantize import check_symmetric, qdq_nodes
    from dynmm_edge.manifest import load_manifest, sha256_file
    m = load_manifest(folder)  # verifies every variant's sha256
    for b in m.branches:
        if b.name in branches:
            assert b.precision == default  # calibrate adds variants; the default moves only when asked
            v = b.variant("int8")
            assert v.file == f"{b.name}.int8.onnx"
            path = m.file_path(b, "int8")
            assert sha256_file(path) == v.sha256
            assert qdq_nodes(path) > 0
            assert check_symmetric(path) == []
        else:
            assert b.precision == "fp32" and "int8" not in b.variants
    assert not [p for p in Path(folder).iterdir() if p.name.startswith(".")], "temp/backup files left behind"
    return m


@pytest.mark.skipif(not available("pyrealsense2"), reason="pyrealsense2 (and libusb) needed to write a .db3")
def test_calibrate_from_db3_recording(model_dir, synth_frames, tmp_path):
    from dynmm_edge.calibration.quantize import calibrate
    from dynmm_edge.data.recording import write_recording
    rec = tmp_path / "rec.db3"
    assert write_recording(rec, synth_frames[:12]) == 12
    res = calibrate(model_dir, str(rec), frames=8, method="minmax", branches="depth")
    depth = [b.name for b in res.manifest.branches if b.kind == "depth"]
    assert [r.branch for r in res.branches] == depth
    assert res.info["frames"] == 8 and res.info["scanned"] == 12
    m = check_calibrated(model_dir, set(depth))
    assert {b.name: b.precision for b in m.branches} == res.precision


def test_cli_calibrate_from_dataset_dir_with_report(model_dir, synth_frames, tmp_path, capsys):
    from dynmm_edge.apps.cli import main
    from dynmm_edge.data.datasets import write_nyuv2_layout
    root = tmp_path / "nyu"
    assert write_nyuv2_layout(root, "train", synth_frames[:16]) == 16
    out = tmp_path / "rep" / "calib.json"
    rc = main(["calibrate", str(model_dir), "--source", str(root / "train"), "--frames", "10", "--method", "percentile",
               "--branches", "depth,gate", "--set-default", "--precision", "gate=fp32", "--json", str(out),
               "--eval-frames", "4"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "quantising branch depth0" in captured.err and "calibrated 6 branch(es)" in captured.out
    data = json.loads((model_dir / "manifest.json").read_text())
    prec = {b["name"]: b["precision"] for b in data["branches"]}
    gate_entry = [b for b in data["branches"] if b["name"] == "gate"][0]
    assert prec["gate"] == "fp32" and "int8" in gate_entry["variants"]  # calibrated; --precision sets the default
    assert all(p == "int8" for n, p in prec.items() if n.startswith("depth")) and prec["trunk"] == "fp32"
    rep = json.loads(out.read_text())
    assert out.with_suffix(".md").read_text().startswith("# INT8 calibration report")
    assert rep["schema"] == "dynmm-edge/calibration-report" and rep["eval"]["frames"] == 4
    assert rep["eval"]["labelled_frames"] == 4 and rep["calibration"]["method"] == "percentile"
    for name, b in rep["branches"].items():
        if name.startswith("depth"):
            assert np.isfinite(b["sqnr_db_min"]) and b["sqnr_db_min"] > 15.0, (name, b)
        else:
            assert "sqnr_db" not in b
    # gate runs in FP32 on FP32 inputs (depth is downstream of a raw gate): decisions cannot differ
    assert rep["gate"]["agreement"] == 1.0 and sum(rep["gate"]["path_histogram"]["int8"].values()) == 4
    seg = rep["segmentation"]
    assert sorted(seg["paths"], key=int) == [str(k) for k in range(6)]
    for e in list(seg["paths"].values()) + [seg["dynamic"]]:
        assert 0.0 <= e["fp32"]["miou"] <= 100.0 and 0.0 <= e["int8"]["pixel_acc"] <= 100.0
        assert e["delta_miou_points"] == pytest.approx(e["int8"]["miou"] - e["fp32"]["miou"])
        assert 0.5 < e["prediction_agreement"] <= 1.0
    # path 0 runs no depth branch and the trunk is FP32: identical predictions
    assert seg["paths"]["0"]["prediction_agreement"] == 1.0 and seg["paths"]["0"]["delta_miou_points"] == 0.0
    assert set(rep["summary"]["checks"]) == {"miou_within_1pt", "gate_agreement_ge_97pct"}


def test_all_branches_int8_zero_points_and_sqnr(model_dir, synth_frames):
    from dynmm_edge.calibration.quantize import calibrate
    from dynmm_edge.calibration.report import build_report
    res = calibrate(model_dir, synth_frames[:12], frames=8, method="minmax", set_default=True)
    names = {b.name for b in res.manifest.branches}
    check_calibrated(model_dir, names, default="int8")
    rep = build_report(res.manifest, synth_frames[12:15])
    assert set(rep["precision"].values()) == {"int8"}
    for b in rep["branches"].values():
        assert all(np.isfinite(v) and v > 12.0 for v in b["sqnr_db"].values()), b
    assert 0.0 <= rep["gate"]["agreement"] <= 1.0
    json.dumps(rep, allow_nan=False)  # strict JSON


@pytest.mark.parametrize("case", ["too_few", "size_mismatch", "no_depth"])
def test_bad_data_leaves_folder_untouched(model_dir, synth_frames, case):
    from dynmm_edge.calibration.quantize import calibrate
    before = folder_hashes(model_dir)
    frames = [Frame(f.frame_id, f.rgb, f.depth, labels=f.labels) for f in synth_frames[:10]]
    if case == "too_few":
        frames, expect = frames[:5], r"only 5 usable frame\(s\).*at least 8"
    elif case == "size_mismatch":
        frames[7].depth = frames[7].depth[:, :-4]
        expect = r"frame 7: rgb is 80x60 but depth is 76x60"
    else:
        frames[3].depth = None
        expect = r"frame 3 has no depth stream"
    with pytest.raises(DataError, match=expect) as exc:
        calibrate(model_dir, frames, frames=8)
    assert "Frame" in str(exc.value) or "list" in str(exc.value)  # names the source
    assert folder_hashes(model_dir) == before


def test_too_few_frames_from_uri_names_source(model_dir):
    from dynmm_edge.calibration.quantize import calibrate
    before = folder_hashes(model_dir)
    uri = f"synthetic://?frames=6&width={W}&height={H}"
    with pytest.raises(DataError, match=r"synthetic://\?frames=6.*only 6 usable"):
        calibrate(model_dir, uri, frames=8)
    assert folder_hashes(model_dir) == before


def test_failure_mid_way_rolls_back(model_dir, synth_frames, monkeypatch):
    """Second calibration fails at the last branch / at the manifest write: folder byte-identical."""
    import dynmm_edge.calibration.quantize as qz
    qz.calibrate(model_dir, synth_frames[:10], frames=8, branches="depth0,depth1")
    before = folder_hashes(model_dir)
    real = qz.quantize_branch
    calls = []

    def flaky(fp32, out, reader, config, branch="", work=None):
        calls.append(branch)
        if branch == "depth2":
            raise RuntimeError("simulated crash")
        return real(fp32, out, reader, config, branch, work)

    monkeypatch.setattr(qz, "quantize_branch", flaky)
    with pytest.raises(BackendError, match="quantising branch 'depth2'"):
        qz.calibrate(model_dir, synth_frames[:10], frames=8, branches="depth", method="minmax")
    assert calls == ["depth0", "depth1", "depth2"]
    assert folder_hashes(model_dir) == before
    monkeypatch.setattr(qz, "quantize_branch", real)

    import dynmm_edge.folder_commit as fc

    def broken_switch(folder, data):  # every new file placed, then the manifest write fails
        raise OSError("disk full")

    monkeypatch.setattr(fc, "replace_manifest", broken_switch)
    with pytest.raises(OSError, match="disk full"):
        qz.calibrate(model_dir, synth_frames[:10], frames=8, branches="depth", method="entropy")
    assert folder_hashes(model_dir) == before  # depth0/1.int8 restored, depth2..4.int8 removed


def test_exclude_by_op_type_and_unknown_name(model_dir, synth_frames):
    import onnx

    from dynmm_edge.calibration.quantize import calibrate
    res = calibrate(model_dir, synth_frames[:10], frames=8, branches="depth1", exclude=("Add",))
    (b,) = res.branches
    assert b.excluded_nodes and all("Add" in n for n in b.excluded_nodes)
    g = onnx.load(str(model_dir / "depth1.int8.onnx")).graph
    producers = {o: n for n in g.node for o in n.output}
    for n in g.node:
        if n.op_type == "Add":  # excluded: fed by float tensors straight from DequantizeLinear, never quantised out
            assert all(producers.get(i) is None or producers[i].op_type != "QuantizeLinear" for i in n.input)
    before = folder_hashes(model_dir)
    with pytest.raises(ManifestError, match=r"no_such_node"):
        calibrate(model_dir, synth_frames[:10], frames=8, branches="depth1", exclude=("no_such_node",))
    assert folder_hashes(model_dir) == before


def test_feeds_are_real_upstream_tensors(tiny_export, synth_frames, tmp_path):
    from dynmm_edge.calibration.feeds import BranchPipeline, capture_feeds, frame_inputs, preprocess_config
    from dynmm_edge.manifest import load_manifest
    m = load_manifest(tiny_export)
    store = capture_feeds(m, synth_frames[:3], tmp_path / "feeds", ["depth1", "trunk", "gate"])
    assert sorted(p.name for p in (tmp_path / "feeds").iterdir()) == ["depth1", "gate", "trunk"]
    assert len(list((tmp_path / "feeds" / "trunk" / "depth_present").glob("*.npy"))) == 3
    reader = store.reader("trunk")
    items = list(reader)
    assert len(items) == 3 and len(reader) == 3
    trunk_inputs = {t.name for t in m.branch("trunk").inputs}
    assert set(items[0]) == trunk_inputs
    np.testing.assert_array_equal(items[0]["depth_present"], np.ones(5, np.float32))
    env = BranchPipeline(m).run_path(frame_inputs(synth_frames[0], preprocess_config(m)), m.full_path)
    np.testing.assert_array_equal(store.load("depth1", 0)["depth_feat_0"], env["depth_feat_0"])
    np.testing.assert_array_equal(items[0]["depth_feat_4"], env["depth_feat_4"])
    assert np.abs(env["depth_feat_4"]).sum() > 0
    reader.set_range(1, 3)
    assert reader.get_next() is not None and reader.get_next() is not None and reader.get_next() is None
    with pytest.raises(DataError, match="depth0"):
        store.reader("depth0")


def test_forced_path_zero_fills_skipped_depth(tiny_export, synth_frames):
    from dynmm_edge.calibration.feeds import BranchPipeline, frame_inputs, preprocess_config
    from dynmm_edge.manifest import load_manifest
    m = load_manifest(tiny_export)
    seen = {}
    BranchPipeline(m).run_path(frame_inputs(synth_frames[0], preprocess_config(m)), 2,
                               record=lambda name, t: seen.setdefault(name, t))
    assert list(seen) == ["gate", "depth0", "depth1", "trunk"]
    np.testing.assert_array_equal(seen["trunk"]["depth_present"], np.array([1, 1, 0, 0, 0], np.float32))
    assert not seen["trunk"]["depth_feat_2"].any() and seen["trunk"]["depth_feat_1"].any()


def test_precision_spec(tiny_export):
    from dynmm_edge.calibration.quantize import apply_precision, parse_precision_spec, resolve_branches
    from dynmm_edge.manifest import load_manifest
    m = load_manifest(tiny_export)
    depth = [f"depth{i}" for i in range(5)]
    assert parse_precision_spec("depth=int8", m) == {n: "int8" for n in depth}
    spec = parse_precision_spec("gate=fp16, depth=int8,trunk=FP16,depth3=fp32", m)
    assert spec == {"gate": "fp16", **{n: "int8" for n in depth}, "depth3": "fp32", "trunk": "fp16"}
    assert parse_precision_spec("all=int8,trunk=fp32", m)["trunk"] == "fp32"
    assert parse_precision_spec("", m) == {}
    with pytest.raises(ManifestError, match=r"unknown branch or kind 'dept'"):
        parse_precision_spec("dept=int8", m)
    with pytest.raises(ManifestError, match=r"has no 'stem' branch"):
        parse_precision_spec("stem=int8", m)
    with pytest.raises(ManifestError, match=r"'int4' for 'depth' is not one of"):
        parse_precision_spec("depth=int4", m)
    with pytest.raises(ManifestError, match=r"KEY=PRECISION"):
        parse_precision_spec("depth", m)
    with pytest.raises(ManifestError, match=r"branch 'gate' has no int8 variant"):
        apply_precision(m, {"gate": "int8"})
    assert resolve_branches("trunk,depth1", m) == ["depth1", "trunk"]
    assert resolve_branches(None, m) == ["gate"] + depth + ["trunk"]


def test_cli_errors_exit_1_and_leave_folder(model_dir, capsys):
    from dynmm_edge.apps.cli import main
    before = folder_hashes(model_dir)
    uri = f"synthetic://?frames=5&width={W}&height={H}"
    assert main(["calibrate", str(model_dir), "--source", uri, "--frames", "8"]) == 1
    assert "only 5 usable frame(s)" in capsys.readouterr().err
    assert main(["calibrate", str(model_dir), "--source", uri, "--precision", "dept=int8"]) == 1
    assert "unknown branch or kind 'dept'" in capsys.readouterr().err
    assert folder_hashes(model_dir) == before


def test_first_strategy_takes_stream_head(synth_frames):
    from dynmm_edge.calibration.frames import choose_frames
    sel = choose_frames(synth_frames, 8, strategy="first")
    assert sel.indices == tuple(range(8)) and sel.scanned == 8


def test_cli_calibrate_keeps_default_precision_unless_set_default(model_dir, tmp_path, capsys):
    from dynmm_edge.apps.cli import main
    from dynmm_edge.manifest import load_manifest
    uri = f"synthetic://?frames=14&width={W}&height={H}&seed=4"
    out = tmp_path / "calib.json"
    assert main(["calibrate", str(model_dir), "--source", uri, "--frames", "8", "--branches", "depth",
                 "--json", str(out), "--eval-frames", "4"]) == 0
    m = load_manifest(model_dir)
    depth = [b for b in m.branches if b.kind == "depth"]
    assert all(b.precision == "fp32" and "int8" in b.variants for b in depth)  # variants only
    assert "(unchanged;" in capsys.readouterr().out
    rep = json.loads(out.read_text())  # the report still evaluates the INT8 configuration
    assert all(rep["precision"][b.name] == "int8" for b in depth) and rep["precision"]["trunk"] == "fp32"
    assert rep["summary"]["checks_basis"]["miou_within_1pt"].startswith("4 labelled")
    assert main(["calibrate", str(model_dir), "--source", uri, "--frames", "8", "--branches", "depth",
                 "--set-default"]) == 0
    assert all(b.precision == "int8" for b in load_manifest(model_dir).branches if b.kind == "depth")


def test_cli_calibrate_refuses_class_count_mismatch(tmp_path, capsys, synth_frames):
    """A 40-class model against 8-class synthetic labels: refused before any work, folder untouched."""
    from dynmm_edge.apps.cli import main
    from dynmm_edge.export.exporter import export_model
    folder = tmp_path / "c40"
    export_model("tiny-test", folder, import_options={"num_classes": 40})
    before = folder_hashes(folder)
    uri = f"synthetic://?frames=12&width={W}&height={H}"
    assert main(["calibrate", str(folder), "--source", uri, "--frames", "8"]) == 1
    err = capsys.readouterr().err
    assert "labels (synthetic://" in err and "have 8 classes but model" in err and "has 40" in err
    assert folder_hashes(folder) == before
    # labels with values the model cannot predict are refused by the report, whatever the source
    from dynmm_edge.calibration.report import check_label_classes
    m4 = export_model("tiny-test", tmp_path / "c4", import_options={"num_classes": 4})
    with pytest.raises(DataError, match=r"label value [4-7] but model .* has 4 classes"):
        check_label_classes(m4, synth_frames[:5])


def test_cli_calibrate_accepts_a_checkpoint_and_demo(tmp_path, capsys, monkeypatch):
    """The model resolver: a checkpoint is exported into the cache; 'demo' is worked on as a copy."""
    from dynmm_edge.apps.cli import main
    from dynmm_edge.model.checkpoints import load_model, save_checkpoint
    from dynmm_edge.paths import DEMO_MODEL
    monkeypatch.setenv("DYNMM_EDGE_CACHE", str(tmp_path / "cache"))
    net, meta = load_model("tiny-test")
    meta["train"] = {"weights": "test"}
    ckpt = save_checkpoint(tmp_path / "tiny.pt", net, meta)
    uri = f"synthetic://?frames=10&width={W}&height={H}"
    assert main(["calibrate", str(ckpt), "--source", uri, "--frames", "8", "--branches", "depth1"]) == 0
    assert "calibrated 1 branch(es) of " + str(tmp_path / "cache") in capsys.readouterr().out
    before = folder_hashes(DEMO_MODEL)
    assert main(["calibrate", "demo", "--source", "synthetic://?frames=10&width=128&height=96", "--frames", "8",
                 "--branches", "depth4", "-o", str(tmp_path / "demo_int8")]) == 0
    assert (tmp_path / "demo_int8" / "depth4.int8.onnx").is_file() and folder_hashes(DEMO_MODEL) == before

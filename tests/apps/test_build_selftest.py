"""`dynmm-edge build` and `selftest`; the fallback wording is checked only where TensorRT is absent."""
import shutil

import pytest

pytest.importorskip("onnxruntime")


def test_build_ort_fp16_adds_variants_and_selftest_passes(tmp_path, tiny_export, capsys):
    from dynmm_edge.apps.cli import main
    from dynmm_edge.manifest import load_manifest
    _, _, m = tiny_export
    folder = tmp_path / "m"
    shutil.copytree(m.folder, folder)
    assert main(["build", str(folder), "--backend", "ort", "--precision", "depth=fp16"]) == 0
    m2 = load_manifest(folder)  # still valid, hashes included
    assert all(set(b.variants) == {"fp32", "fp16"} for b in m2.branches if b.kind == "depth")
    assert set(m2.branch("trunk").variants) == {"fp32"}
    capsys.readouterr()
    pytest.importorskip("torch")
    from dynmm_edge.backends.tensorrt import trt_available
    if trt_available()[0]:  # 'auto' = TensorRT: where it works, the fp32 check passes on it
        assert main(["selftest", str(folder), "--backend", "auto", "--runs", "2"]) == 0
        assert "PASS: 8/8 outputs within tolerance on trt" in capsys.readouterr().out
        return
    # TensorRT (the requested backend) is absent: non-zero and nothing said to pass
    assert main(["selftest", str(folder), "--backend", "auto", "--runs", "2"]) == 3
    cap = capsys.readouterr()
    assert "FALLBACK not allowed" in cap.err and "TensorRT is not usable" in cap.err and "PASS" not in cap.out
    assert main(["selftest", str(folder), "--backend", "auto", "--runs", "2", "--allow-fallback",
                 "--precision", "depth=fp16", "--json", str(tmp_path / "st.json")]) == 0
    out = capsys.readouterr().out
    assert "PASS" not in out and "FAIL" not in out
    assert out.count("FALLBACK") >= 8 and "ran torch fp32 for fp16" in out and "NOT checked" in out
    import json
    rep = json.loads((tmp_path / "st.json").read_text())
    assert rep["verdict"] == "FALLBACK" and rep["ran"]["backend"] == "torch"
    assert {(r["branch"], r["requested"], r["ran"]) for r in rep["rows"] if r["branch"] == "depth1"} == \
        {("depth1", "fp16", "fp32")}


def test_selftest_pass_only_when_the_requested_backend_and_precision_ran(tmp_path, tiny_export, capsys):
    from dynmm_edge.apps.cli import main
    _, _, m = tiny_export
    assert main(["selftest", str(m.folder), "--backend", "ort", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS") == 9 and "FALLBACK" not in out  # 8 rows + the verdict line
    # int8 asked on ORT without a calibrated variant: FP32 ran instead -> FALLBACK, exit 3
    assert main(["selftest", str(m.folder), "--backend", "ort", "--precision", "int8", "--runs", "1"]) == 3
    out = capsys.readouterr().out
    assert "FALLBACK: ran ort fp32 for int8" in out and "PASS" not in out


def test_selftest_and_build_accept_demo_and_checkpoints(tmp_path, capsys, monkeypatch):
    """The one model resolver: 'demo' and a checkpoint file work like a folder."""
    pytest.importorskip("torch")
    from dynmm_edge.apps.cli import main
    from dynmm_edge.backends.tensorrt import trt_available
    from dynmm_edge.paths import DEMO_MODEL
    monkeypatch.setenv("DYNMM_EDGE_CACHE", str(tmp_path / "cache"))
    before = sorted(p.name for p in DEMO_MODEL.iterdir())
    assert main(["selftest", "demo", "--allow-fallback", "--runs", "1"]) == 0
    assert ("FALLBACK" in capsys.readouterr().out) != trt_available()[0]
    assert main(["build", "demo", "--backend", "ort", "--precision", "depth=fp16"]) == 0
    out = capsys.readouterr().out
    assert "depth0" in out and sorted(p.name for p in DEMO_MODEL.iterdir()) == before  # shipped model untouched
    work = next((tmp_path / "cache" / "models").glob("demo-work-*"))
    assert (work / "depth0.fp16.onnx").is_file()
    assert main(["build", str(DEMO_MODEL / "model.pt"), "--backend", "torch"]) == 0
    assert "trunk" in capsys.readouterr().out


def test_build_trt_without_tensorrt_is_a_clear_error(tiny_export, capsys):
    from dynmm_edge.apps.cli import main
    from dynmm_edge.backends.tensorrt import trt_available
    if trt_available()[0]:
        pytest.skip("TensorRT works on this machine: the error path cannot be reached")
    _, _, m = tiny_export
    assert main(["build", str(m.folder), "--backend", "trt"]) == 1
    assert "TensorRT is not usable on this machine" in capsys.readouterr().err


def test_build_int8_without_calibration_names_the_missing_variant(tiny_export, capsys):
    from dynmm_edge.apps.cli import main
    _, _, m = tiny_export
    assert main(["build", str(m.folder), "--backend", "ort", "--precision", "depth=int8"]) == 1
    assert "no int8 variant" in capsys.readouterr().err

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
    assert main(["selftest", str(folder), "--backend", "auto", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    from dynmm_edge.backends.tensorrt import trt_available
    if trt_available()[0]:  # 'auto' picks TensorRT where it works, and says so
        assert "backend under test: trt" in out and "TensorRT is not available" not in out
    else:
        assert "TensorRT is not available" in out and "comparing PyTorch with ONNX Runtime" in out
        assert "backend under test: torch" in out
    assert "8/8 outputs within tolerance" in out and "FAIL" not in out


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

"""Real TensorRT on a real GPU: build, cache, run and chain, compared with ONNX Runtime.

Skipped with the reason from trt_available() wherever tensorrt or a CUDA device is missing.
"""

import numpy as np
import pytest

from dynmm_edge.backends.tensorrt import trt_available

OK, WHY = trt_available()
pytestmark = [pytest.mark.trt, pytest.mark.gpu, pytest.mark.skipif(not OK, reason=WHY)]


from tests.fakes import fake_tensorrt  # noqa: E402


def _fakes():
    return fake_tensorrt


def _branch(model_dir, name, fname, ins, outs, cin, cout, precision="fp32"):
    from dynmm_edge.tensors import TensorSpec
    from dynmm_edge.manifest import Branch, Variant, sha256_file
    return Branch(name=name, kind="depth", inputs=(TensorSpec(ins, (-1, cin, 8, 8)),),
                  outputs=(TensorSpec(outs, (-1, cout, 8, 8)),),
                  variants={"fp32": Variant(fname, sha256_file(model_dir / fname))}, precision=precision)


@pytest.mark.parametrize("precision,atol", [("fp32", 1e-3), ("fp16", 3e-2)])
def test_real_build_run_chain(tmp_path, precision, atol):
    ort = pytest.importorskip("onnxruntime")
    from dynmm_edge.backends.tensorrt import TensorRTBackend
    from dynmm_edge.export.trt_build import BatchProfile, build_engine, read_sidecar
    from dynmm_edge.testing import manifest_for
    fakes = _fakes()
    fakes.make_tiny_onnx(tmp_path / "a.onnx", in_name="x", out_name="feat", channels=(2, 3))
    fakes.make_tiny_onnx(tmp_path / "b.onnx", in_name="feat", out_name="logits", channels=(3, 4), seed=3)
    a = _branch(tmp_path, "depth_0", "a.onnx", "x", "feat", 2, 3, precision)
    b = _branch(tmp_path, "trunk", "b.onnx", "feat", "logits", 3, 4, precision)
    x = np.random.default_rng(0).standard_normal((2, 2, 8, 8)).astype(np.float32)
    sa = ort.InferenceSession(str(tmp_path / "a.onnx"), providers=["CPUExecutionProvider"])
    sb = ort.InferenceSession(str(tmp_path / "b.onnx"), providers=["CPUExecutionProvider"])
    ref = sb.run(None, {"feat": sa.run(None, {"x": x})[0]})[0]
    be = TensorRTBackend(cache_dir=tmp_path / "eng", profile=BatchProfile(1, 2, 4), workspace_mb=256,
                         builder=build_engine)
    m = manifest_for(tmp_path, [a, b])
    try:
        with be.open(a, m, precision) as ra, be.open(b, m, precision) as rb:
            out = rb.infer(ra.infer({"x": be.upload(x)}))["logits"]
            np.testing.assert_allclose(be.download(out), ref, atol=atol, rtol=atol)
        side = read_sidecar(be.engines["trunk"])
        assert side["precision"] == precision and side["trt_version"] == be.describe()["tensorrt"]
        built = sorted(p.name for p in (tmp_path / "eng").glob("*.engine"))
        be.open(a, m, precision)  # second open: cache hit, no new engine files
        assert sorted(p.name for p in (tmp_path / "eng").glob("*.engine")) == built
    finally:
        be.close()


def test_real_device_buffers_round_trip():
    from dynmm_edge.backends.cuda_buffers import open_device
    dev = open_device("auto")
    try:
        a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
        np.testing.assert_array_equal(dev.upload(a).download(), a)
        assert not dev.zeros((5,), np.int32).download().any()
        assert dev.describe()["compute_capability"] != "0.0"
    finally:
        dev.close()

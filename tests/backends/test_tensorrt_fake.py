"""TensorRT build / cache / runner against fakes of the 8.5, 10 and 11 API surfaces.

The fake engine runs the parsed ONNX with onnxruntime through raw pointers, so outputs are real.
"""
import json
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from dynmm_edge.backends.cuda_buffers import DeviceArray, HostDevice  # noqa: E402
from dynmm_edge.backends.tensorrt import TensorRTBackend, TensorRTRunner, trt_available  # noqa: E402
from dynmm_edge.errors import BackendError  # noqa: E402
from dynmm_edge.export import trt_build as tb  # noqa: E402
from dynmm_edge.manifest import Branch, Variant, sha256_file  # noqa: E402
from dynmm_edge.tensors import TensorSpec  # noqa: E402
from dynmm_edge.testing import manifest_for  # noqa: E402

VERSIONS = ["8.5.3", "10.3.0", "11.4.0"]
GPU = {"name": "Fake Orin", "compute_capability": "8.7"}


from tests.fakes import fake_tensorrt  # noqa: E402


def _fakes():
    return fake_tensorrt


def _ref(onnx_path, feeds):
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def _branch(model_dir, name, fname, ins, outs, precision="fp32", cin=2, cout=3):
    return Branch(name=name, kind="depth",
                  inputs=(TensorSpec(ins, (-1, cin, 8, 8)),), outputs=(TensorSpec(outs, (-1, cout, 8, 8)),),
                  variants={"fp32": Variant(fname, sha256_file(model_dir / fname))}, precision=precision)


# ---- the fakes really differ where TensorRT does -----------------------------------------------
def test_fake_surfaces_follow_the_versions():
    t8, t10, t11 = (_fakes().make_fake_trt(v) for v in VERSIONS)
    assert hasattr(t8.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    assert not hasattr(t8.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    assert hasattr(t10.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    assert not hasattr(t11.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    for t in (t8, t10):
        assert hasattr(t.BuilderFlag, "FP16") and hasattr(t.BuilderFlag, "INT8")
        assert hasattr(t, "IInt8EntropyCalibrator2")
    assert not hasattr(t11.BuilderFlag, "FP16") and not hasattr(t11.BuilderFlag, "INT8")
    assert not hasattr(t11, "IInt8EntropyCalibrator2")
    assert hasattr(t8.IExecutionContext, "execute_async_v2") and hasattr(t8.Builder, "build_engine")
    assert hasattr(t8.IBuilderConfig(), "max_workspace_size")
    for t in (t10, t11):
        assert not hasattr(t.IExecutionContext, "execute_async_v2")
        assert not hasattr(t.Builder, "build_engine")
        assert not hasattr(t.IBuilderConfig(), "max_workspace_size")
    for t in (t8, t10, t11):
        for attr in ("execute_async_v3", "set_input_shape", "set_tensor_address"):
            assert hasattr(t.IExecutionContext, attr)


def test_trt_available_reports_a_reason():
    ok, why = trt_available()
    assert isinstance(ok, bool) and why
    if not ok:
        assert "tensorrt" in why.lower() or "cuda" in why.lower()


# ---- building ------------------------------------------------------------------------------
@pytest.mark.parametrize("version,net_flags", [("8.5.3", 1), ("10.3.0", 2), ("11.4.0", 0)])
def test_fp32_build_flags_profile_workspace(tmp_path, version, net_flags):
    fakes = _fakes()
    trt = fakes.make_fake_trt(version)
    onnx_path = fakes.make_tiny_onnx(tmp_path / "gate.onnx")
    path = tb.build_engine(onnx_path, "fp32", trt_module=trt, workspace_mb=64, cache_dir=tmp_path / "eng",
                           profile=tb.BatchProfile(1, 2, 4), gpu=GPU)
    assert path.parent == tmp_path / "eng" and path.name.startswith("gate.") and path.suffix == ".engine"
    key16 = path.name.split(".")[1]
    assert len(key16) == 16
    side = json.loads(tb.sidecar_path(path).read_text())
    assert side["key"].startswith(key16) and side["trt_version"] == version
    assert side["gpu_name"] == "Fake Orin" and side["compute_capability"] == "8.7"
    assert side["profile"] == {"min": 1, "opt": 2, "max": 4} and side["workspace_mb"] == 64
    assert trt._state["networks"][-1].flags == net_flags
    cfg = trt._state["configs"][-1]
    assert cfg.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 64 << 20
    assert cfg.flags == set()
    assert cfg.profiles[0].get_shape("x") == [(1, 2, 8, 8), (2, 2, 8, 8), (4, 2, 8, 8)]


@pytest.mark.parametrize("version", VERSIONS)
def test_engine_cache_hit_and_key_fields(tmp_path, version):
    fakes = _fakes()
    trt = fakes.make_fake_trt(version)
    onnx_path = fakes.make_tiny_onnx(tmp_path / "gate.onnx")
    kw = dict(trt_module=trt, cache_dir=tmp_path / "eng", gpu=GPU)
    a = tb.build_engine(onnx_path, "fp32", **kw)
    assert tb.build_engine(onnx_path, "fp32", **kw) == a
    assert trt._state["builds"] == 1  # second call reused the engine
    others = {tb.build_engine(onnx_path, "fp32", **dict(kw, gpu={"name": "Fake Orin", "compute_capability": "7.2"})),
              tb.build_engine(onnx_path, "fp32", workspace_mb=512, **kw),
              tb.build_engine(onnx_path, "fp32", profile=tb.BatchProfile(1, 1, 8), **kw)}
    assert a not in others and len(others) == 3 and trt._state["builds"] == 4
    # a changed ONNX gives a new key
    fakes.make_tiny_onnx(onnx_path, seed=5)
    b = tb.build_engine(onnx_path, "fp32", **kw)
    assert b != a and trt._state["builds"] == 5
    # an engine whose bytes no longer match its sidecar is rebuilt, not trusted
    b.write_bytes(b.read_bytes()[:40])
    assert tb.build_engine(onnx_path, "fp32", **kw) == b
    assert trt._state["builds"] == 6
    assert tb.load_engine(b, trt_module=trt) is not None


def test_fp16_on_8_and_10_uses_the_builder_flag(tmp_path):
    fakes = _fakes()
    for version in ("8.5.3", "10.3.0"):
        trt = fakes.make_fake_trt(version)
        onnx_path = fakes.make_tiny_onnx(tmp_path / "gate.onnx")
        p = tb.build_engine(onnx_path, "fp16", trt_module=trt, cache_dir=tmp_path / version, gpu=GPU)
        assert trt._state["configs"][-1].get_flag(trt.BuilderFlag.FP16)
        side = tb.read_sidecar(p)
        assert side["builder_flags"] == ["FP16"] and side["strongly_typed"] is False


def test_fp16_on_10_with_fp16_onnx_is_strongly_typed(tmp_path):
    from dynmm_edge.export.fp16 import convert_fp16
    fakes = _fakes()
    trt = fakes.make_fake_trt("10.3.0")
    src = fakes.make_tiny_onnx(tmp_path / "gate.onnx")
    convert_fp16(src, tmp_path / "gate_fp16.onnx")
    p = tb.build_engine(tmp_path / "gate_fp16.onnx", "fp16", trt_module=trt, cache_dir=tmp_path / "e", gpu=GPU)
    assert trt._state["networks"][-1].flags == 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert trt._state["configs"][-1].flags == set() and tb.read_sidecar(p)["strongly_typed"] is True


def test_fp16_on_11_converts_the_onnx(tmp_path):
    fakes = _fakes()
    trt = fakes.make_fake_trt("11.4.0")
    onnx_path = fakes.make_tiny_onnx(tmp_path / "gate.onnx")
    p = tb.build_engine(onnx_path, "fp16", trt_module=trt, cache_dir=tmp_path / "e", gpu=GPU)
    side = tb.read_sidecar(p)
    assert side["built_from"].endswith(".fp16.onnx") and side["builder_flags"] == []
    assert tb.inspect_onnx((tmp_path / "e" / side["built_from"]).read_bytes()).is_fp16
    x = np.random.default_rng(0).standard_normal((1, 2, 8, 8)).astype(np.float32)
    dev = HostDevice()
    with TensorRTRunner("gate", tb.load_engine(p, trt_module=trt), dev, p, trt) as r:
        y = r.infer({"x": x})["y"].download()
    np.testing.assert_allclose(y, _ref(onnx_path, {"x": x})["y"], atol=2e-2)  # fp16 graph, fp32 IO


def test_fp16_on_11_without_converter_says_so(tmp_path, monkeypatch):
    fakes = _fakes()
    trt = fakes.make_fake_trt("11.4.0")
    onnx_path = fakes.make_tiny_onnx(tmp_path / "gate.onnx")
    monkeypatch.setitem(sys.modules, "dynmm_edge.export.fp16", None)  # import now fails
    with pytest.raises(BackendError, match="convert_fp16 is not available"):
        tb.build_engine(onnx_path, "fp16", trt_module=trt, cache_dir=tmp_path / "e", gpu=GPU)


@pytest.mark.parametrize("version,flags,strongly", [("8.5.3", {"INT8"}, False), ("10.3.0", set(), True),
                                                    ("11.4.0", set(), True)])
def test_int8_from_qdq_onnx(tmp_path, version, flags, strongly):
    fakes = _fakes()
    trt = fakes.make_fake_trt(version)
    onnx_path = fakes.make_tiny_onnx(tmp_path / "gate_int8.onnx", kind="qdq")
    p = tb.build_engine(onnx_path, "int8", trt_module=trt, cache_dir=tmp_path / "e", gpu=GPU,
                        profile=tb.BatchProfile(1, 2, 2))
    assert {f.name for f in trt._state["configs"][-1].flags} == flags
    side = tb.read_sidecar(p)
    assert side["explicit_qdq"] is True and side["strongly_typed"] is strongly and side["calibrated"] is False
    x = np.random.default_rng(1).uniform(-2, 2, (2, 2, 8, 8)).astype(np.float32)
    with TensorRTRunner("gate", tb.load_engine(p, trt_module=trt), HostDevice(), p, trt) as r:
        np.testing.assert_allclose(r.infer({"x": x})["y"].download(), _ref(onnx_path, {"x": x})["y"], atol=1e-6)


@pytest.mark.parametrize("version", VERSIONS)
def test_int8_without_qdq_or_calibrator_is_refused(tmp_path, version):
    fakes = _fakes()
    trt = fakes.make_fake_trt(version)
    onnx_path = fakes.make_tiny_onnx(tmp_path / "gate.onnx")
    with pytest.raises(BackendError, match="gate.onnx: INT8 needs a Q/DQ"):
        tb.build_engine(onnx_path, "int8", trt_module=trt, cache_dir=tmp_path / "e", gpu=GPU)
    assert trt._state["builds"] == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_parser_error_names_node_and_op(tmp_path, version):
    fakes = _fakes()
    trt = fakes.make_fake_trt(version)
    onnx_path = fakes.make_tiny_onnx(tmp_path / "bad.onnx", kind="unsupported")
    with pytest.raises(BackendError) as info:
        tb.build_engine(onnx_path, "fp32", trt_module=trt, cache_dir=tmp_path / "e", gpu=GPU)
    msg = str(info.value)
    assert "bad.onnx" in msg and "node 2 (find_nonzero, op NonZero)" in msg and "No importer" in msg
    assert f"TensorRT {version}" in msg
    assert not (tmp_path / "e").exists() or not list((tmp_path / "e").glob("*.engine"))


def test_timing_cache_is_written_and_reused(tmp_path):
    fakes = _fakes()
    trt = fakes.make_fake_trt("10.3.0")
    onnx_path = fakes.make_tiny_onnx(tmp_path / "gate.onnx")
    tc_path = tmp_path / "timing.cache"
    tb.build_engine(onnx_path, "fp32", trt_module=trt, cache_dir=tmp_path / "e", gpu=GPU, timing_cache_path=tc_path)
    assert tc_path.is_file() and trt._state["timing_cache_hit"] is False
    tb.build_engine(onnx_path, "fp16", trt_module=trt, cache_dir=tmp_path / "e", gpu=GPU, timing_cache_path=tc_path)
    assert trt._state["timing_cache_hit"] is True
    # a cache from another TensorRT version is not trusted: the fake starts empty again
    trt85 = fakes.make_fake_trt("8.5.3")
    tb.build_engine(onnx_path, "fp32", trt_module=trt85, cache_dir=tmp_path / "e", gpu=GPU, timing_cache_path=tc_path)
    assert trt85._state["timing_cache_hit"] is False
    # default: a per-version, per-GPU file in the cache folder
    tb.build_engine(onnx_path, "fp32", trt_module=trt, cache_dir=tmp_path / "d", gpu=GPU)
    assert [p.name for p in (tmp_path / "d").glob("timing.*")] == ["timing.trt10.3.0.fake-orin.sm8.7.cache"]


def test_non_batch_dynamic_dims_are_refused(tmp_path):
    import onnx
    fakes = _fakes()
    trt = fakes.make_fake_trt("10.3.0")
    p = fakes.make_tiny_onnx(tmp_path / "g.onnx")
    m = onnx.load(str(p))
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"
    onnx.save(m, str(p))
    with pytest.raises(BackendError, match="input 'x' has dynamic non-batch dimensions"):
        tb.build_engine(p, "fp32", trt_module=trt, cache_dir=tmp_path / "e", gpu=GPU)


# ---- loading -------------------------------------------------------------------------------
def test_version_mismatch_is_refused_with_rebuild_hint(tmp_path):
    fakes = _fakes()
    onnx_path = fakes.make_tiny_onnx(tmp_path / "gate.onnx")
    p = tb.build_engine(onnx_path, "fp32", trt_module=fakes.make_fake_trt("10.3.0"), cache_dir=tmp_path / "e", gpu=GPU)
    with pytest.raises(BackendError, match=r"built by TensorRT 10\.3\.0, this is 8\.5\.3: rebuild"):
        tb.load_engine(p, trt_module=fakes.make_fake_trt("8.5.3"))


def test_corrupt_engine_errors_name_the_file(tmp_path):
    fakes = _fakes()
    trt = fakes.make_fake_trt("10.3.0")
    onnx_path = fakes.make_tiny_onnx(tmp_path / "gate.onnx")
    p = tb.build_engine(onnx_path, "fp32", trt_module=trt, cache_dir=tmp_path / "e", gpu=GPU)
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(BackendError, match="corrupt or truncated") as info:
        tb.load_engine(p, trt_module=trt)
    assert str(p) in str(info.value)
    tb.sidecar_path(p).unlink()  # no sidecar: deserialize itself returns None
    with pytest.raises(BackendError, match="could not deserialize engine") as info:
        tb.load_engine(p, trt_module=trt)
    assert str(p) in str(info.value)
    with pytest.raises(BackendError, match="does not exist"):
        tb.load_engine(tmp_path / "missing.engine", trt_module=trt)


# ---- running ------------------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
def test_backend_runs_and_chains_branches_on_device(tmp_path, version):
    fakes = _fakes()
    trt = fakes.make_fake_trt(version)
    fakes.make_tiny_onnx(tmp_path / "a.onnx", in_name="x", out_name="feat", channels=(2, 3))
    fakes.make_tiny_onnx(tmp_path / "b.onnx", in_name="feat", out_name="logits", channels=(3, 4), seed=3)
    a = _branch(tmp_path, "depth_0", "a.onnx", "x", "feat")
    b = _branch(tmp_path, "trunk", "b.onnx", "feat", "logits", cin=3, cout=4)
    be = TensorRTBackend(device=HostDevice(), trt_module=trt, profile=tb.BatchProfile(1, 1, 4),
                         cache_dir=tmp_path / "eng", builder=tb.build_engine)
    m = manifest_for(tmp_path, [a, b])
    x = np.random.default_rng(2).standard_normal((1, 2, 8, 8)).astype(np.float32)
    ref_feat = _ref(tmp_path / "a.onnx", {"x": x})["feat"]
    ref = _ref(tmp_path / "b.onnx", {"feat": ref_feat})["logits"]
    with be.open(a, m, "fp32") as ra, be.open(b, m, "fp32") as rb:
        assert ra.inputs["x"] == TensorSpec("x", (-1, 2, 8, 8), "float32")
        assert rb.outputs["logits"].shape == (-1, 4, 8, 8)
        feat = ra.infer({"x": be.upload(x)})["feat"]
        assert isinstance(feat, DeviceArray) and feat.shape == (1, 3, 8, 8)
        out = rb.infer({"feat": feat})["logits"]  # device-resident hand-over, no download in between
        np.testing.assert_allclose(be.download(out), ref, rtol=1e-5, atol=1e-6)
        allocs = be.device.allocations
        out = rb.infer({"feat": ra.infer({"x": x})["feat"]})["logits"]  # host feed: one staging buffer
        assert be.device.allocations == allocs + 1
        ptr = out.ptr
        for _ in range(3):  # same shapes: buffers are reused, no new allocations
            out = rb.infer({"feat": ra.infer({"x": x})["feat"]})["logits"]
        assert be.device.allocations == allocs + 1 and out.ptr == ptr
        x3 = np.random.default_rng(3).standard_normal((3, 2, 8, 8)).astype(np.float32)
        y3 = be.download(rb.infer(ra.infer({"x": x3}))["logits"])
        assert y3.shape == (3, 4, 8, 8)
        np.testing.assert_allclose(y3, _ref(tmp_path / "b.onnx", _ref(tmp_path / "a.onnx", {"x": x3}))["logits"],
                                   rtol=1e-5, atol=1e-6)
        with pytest.raises(BackendError, match=r"input 'x' shape \[5, 2, 8, 8\] is not accepted"):
            ra.infer({"x": np.zeros((5, 2, 8, 8), np.float32)})  # beyond profile max 4
        with pytest.raises(BackendError, match="input 'x' is float64"):
            ra.infer({"x": x.astype(np.float64)})
        with pytest.raises(BackendError, match=r"missing input tensor\(s\) \['x'\]"):
            ra.infer({"y": x})
    assert be.describe()["tensorrt"] == version and set(be.engines) == {"depth_0", "trunk"}
    z = be.zeros((2, 3), "float16")
    assert z.dtype == np.float16 and not be.download(z).any()


def test_backend_refuses_modified_onnx_and_wrong_io(tmp_path):
    fakes = _fakes()
    trt = fakes.make_fake_trt("10.3.0")
    fakes.make_tiny_onnx(tmp_path / "a.onnx")
    good = _branch(tmp_path, "gate", "a.onnx", "x", "y")
    be = TensorRTBackend(device=HostDevice(), trt_module=trt, cache_dir=tmp_path / "eng", builder=tb.build_engine)
    wrong = Branch(name="gate", kind="gate", inputs=(TensorSpec("rgb", (-1, 2, 8, 8)),),
                   outputs=(TensorSpec("y", (-1, 3, 8, 8)),), variants=good.variants)
    with pytest.raises(BackendError, match=r"has inputs \['x'\].*manifest says \['rgb'\]"):
        be.open(wrong, manifest_for(tmp_path, [wrong]), "fp32")
    with pytest.raises(BackendError, match="no engine builder"):
        TensorRTBackend(device=HostDevice(), trt_module=trt).open(good, manifest_for(tmp_path, [good]), "fp32")


def test_device_array_checks_and_host_device_round_trip():
    dev = HostDevice()
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    buf = dev.upload(a)
    assert buf.shape == (3, 4) and buf.ptr != 0 and buf.nbytes == 48
    np.testing.assert_array_equal(buf.download(), a)
    with pytest.raises(BackendError, match="cannot upload float32"):
        buf.upload(a.astype(np.float32))
    assert dev.describe()["compute_capability"] == "0.0"


def test_build_false_uses_only_cached_engines(tmp_path):
    fakes = _fakes()
    trt = fakes.make_fake_trt("8.5.3")
    fakes.make_tiny_onnx(tmp_path / "a.onnx")
    br = _branch(tmp_path, "gate", "a.onnx", "x", "y")
    strict = TensorRTBackend(device=HostDevice(), trt_module=trt, cache_dir=tmp_path / "eng", build=False,
                             builder=tb.build_engine)
    m = manifest_for(tmp_path, [br])
    with pytest.raises(BackendError, match="no valid cached engine for branch 'gate'.*build it on this device"):
        strict.open(br, m, "fp32")
    TensorRTBackend(device=HostDevice(), trt_module=trt, cache_dir=tmp_path / "eng",
                    builder=tb.build_engine).open(br, m, "fp32")
    assert trt._state["builds"] == 1
    with strict.open(br, m, "fp32") as r:
        assert r.infer({"x": np.ones((1, 2, 8, 8), np.float32)})["y"].shape == (1, 3, 8, 8)
    assert trt._state["builds"] == 1


def test_engine_for_another_gpu_is_refused(tmp_path):
    fakes = _fakes()
    trt = fakes.make_fake_trt("10.3.0")
    p = tb.build_engine(fakes.make_tiny_onnx(tmp_path / "a.onnx"), "fp32", trt_module=trt,
                        cache_dir=tmp_path / "e", gpu=GPU)
    with pytest.raises(BackendError, match=r"compute capability 8\.7 \(Fake Orin\), this GPU is 9\.0"):
        tb.load_engine(p, trt_module=trt, gpu={"name": "H100", "compute_capability": "9.0"})


def test_auto_device_without_gpu_fails_cleanly():
    from dynmm_edge.backends.cuda_buffers import cuda_available, open_device
    ok, why = cuda_available()
    if ok:
        pytest.skip(f"a CUDA device is present: {why}")
    with pytest.raises(BackendError, match="no CUDA device could be opened: cuda-python: .*pycuda: .*torch: "):
        open_device("auto")
    with pytest.raises(BackendError, match="unknown device kind 'opencl'"):
        open_device("opencl")

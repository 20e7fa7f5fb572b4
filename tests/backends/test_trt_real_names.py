"""The SDK and the fakes against the names of NVIDIA's real TensorRT bindings (8.6.1, 10.3.0, 11.4.0.106).

Fixtures come from scripts/trt_names.py; see trt_surface.py for how uses are found and guarded.
Run `python scripts/mutate.py trt-max-workspace-on-10 trt-fake-int8-on-11` to see these tests fail under deliberate mutations.
"""
import inspect
import itertools

import pytest

from dynmm_edge.errors import BackendError
from dynmm_edge.export.trt_build import PRECISIONS, BuildPlan, TrtApi, decide_build, detect_api
from tests.backends import trt_surface as S
from tests.fakes.fake_tensorrt import make_fake_trt

EXPECTED_API = {  # what each real version offers, per FIELD_NOTES §3/§11
    "8.6.1": dict(major=8, explicit_batch_flag=True, strongly_typed_flag=False, precision_flags=True, calibrators=True),
    "10.3.0": dict(major=10, explicit_batch_flag=False, strongly_typed_flag=True, precision_flags=True,
                   calibrators=True),
    "11.4.0.106": dict(major=11, explicit_batch_flag=False, strongly_typed_flag=True, precision_flags=False,
                       calibrators=False),
}


@pytest.mark.parametrize("version", S.VERSIONS)
def test_fixture_is_the_wheel_it_names(version):
    fx = S.load_fixture(version)
    assert fx["tensorrt_version"] == version and version in fx["wheel"] and len(fx["wheel_sha256"]) == 64
    names = S.real(version)
    # facts checked by hand on the wheels (FIELD_NOTES §11)
    assert names.has("IExecutionContext", "execute_async_v3") and names.has("Builder", "build_serialized_network")
    assert names.has("IBuilderConfig", "max_workspace_size") == (version == "8.6.1")
    assert names.has("NetworkDefinitionCreationFlag", "EXPLICIT_BATCH") == (version != "11.4.0.106")
    assert names.has(None, "IInt8EntropyCalibrator2") == (version != "11.4.0.106")


@pytest.mark.parametrize("version", S.VERSIONS)
def test_detect_api_on_real_names(version):
    api = detect_api(S.real(version).stub())
    assert {k: getattr(api, k) for k in EXPECTED_API[version]} == EXPECTED_API[version]


# ---- the pure decision table, no fakes -----------------------------------------------------------
def _api(version):
    return TrtApi(version=version, **EXPECTED_API[version])


TABLE = [  # version, precision, onnx fp16, onnx Q/DQ, calibrator -> plan (or refusal)
    ("8.6.1", "fp32", False, False, False, BuildPlan(network_flags=("EXPLICIT_BATCH",))),
    ("8.6.1", "fp16", False, False, False, BuildPlan(("FP16",), ("EXPLICIT_BATCH",))),
    ("8.6.1", "int8", False, True, False, BuildPlan(("INT8",), ("EXPLICIT_BATCH",))),
    ("8.6.1", "int8", False, False, True, BuildPlan(("INT8",), ("EXPLICIT_BATCH",), calibrate=True)),
    ("10.3.0", "fp32", False, False, False, BuildPlan((), ("STRONGLY_TYPED",), strongly_typed=True)),
    ("10.3.0", "fp16", False, False, False, BuildPlan(("FP16",))),
    ("10.3.0", "fp16", True, False, False, BuildPlan((), ("STRONGLY_TYPED",), strongly_typed=True)),
    ("10.3.0", "int8", False, True, False, BuildPlan((), ("STRONGLY_TYPED",), strongly_typed=True)),
    ("10.3.0", "int8", False, False, True, BuildPlan(("INT8",), calibrate=True)),
    ("11.4.0.106", "fp32", False, False, False, BuildPlan(strongly_typed=True)),
    ("11.4.0.106", "fp16", False, False, False, BuildPlan(strongly_typed=True, convert_fp16=True)),
    ("11.4.0.106", "fp16", True, False, False, BuildPlan(strongly_typed=True)),
    ("11.4.0.106", "int8", False, True, False, BuildPlan(strongly_typed=True)),
    ("11.4.0.106", "int8", False, False, True, "removed implicit INT8 calibration"),
    ("10.3.0", "int8", False, False, False, "needs a Q/DQ"),
    ("8.6.1", "bf16", False, False, False, "unknown precision"),
]


@pytest.mark.parametrize("version,precision,fp16,qdq,calib,want", TABLE)
def test_decision_table(version, precision, fp16, qdq, calib, want):
    if isinstance(want, str):
        with pytest.raises(BackendError, match=want):
            decide_build(_api(version), precision, onnx_fp16=fp16, onnx_qdq=qdq, calibrator=calib)
    else:
        assert decide_build(_api(version), precision, onnx_fp16=fp16, onnx_qdq=qdq, calibrator=calib) == want


@pytest.mark.parametrize("version", S.VERSIONS)
def test_decision_table_names_exist_in_real_bindings(version):
    names = S.real(version)
    used = S.plan_names(detect_api(names.stub()))
    assert bool(used) == (version != "11.4.0.106")  # 11 takes precision from the ONNX alone
    assert [(c, n) for c, n in used if not names.has(c, n)] == []


# ---- test 2: every name the SDK touches exists in the real bindings of each version -------------
@pytest.mark.parametrize("version", S.VERSIONS)
def test_sdk_uses_only_real_names(version):
    names = S.real(version)
    touched = S.touched(version)
    assert len({(c, n) for c, n, _ in touched}) > 30  # the walk sees the adapters
    missing = sorted({where for c, n, where in touched if not names.has(c, n)})
    assert missing == [], f"TensorRT {version} bindings lack: {missing}"


# ---- test 3: the fakes have exactly the real names for everything the SDK touches ----------------
def _fake_has(trt, cls, name):
    if cls is None:
        return hasattr(trt, name)
    obj = getattr(trt, cls, None)
    if obj is None:
        return False
    if cls == "IBuilderConfig":  # instance attributes (int8_calibrator, max_workspace_size)
        obj = trt.Builder(trt.Logger()).create_builder_config()
    if cls == "ITensor":
        obj = trt.ITensor("x", (1,), trt.DataType.FLOAT)
    if cls == "Logger" and hasattr(trt, "ILogger"):
        return hasattr(obj, name) or hasattr(getattr(trt.ILogger, "Severity", None), name)
    return hasattr(obj, name)


def _all_touched():
    out = set()
    for v in S.VERSIONS:
        out |= {(c, n) for c, n, _ in S.touched(v)}
    # what the adapters probe with hasattr or would reach for on another version
    out |= {("IBuilderConfig", "max_workspace_size"), ("IBuilderConfig", "int8_calibrator"),
            ("IBuilderConfig", "set_calibration_profile"), ("Builder", "build_engine"),
            ("Builder", "platform_has_fast_fp16"), ("IExecutionContext", "execute_async_v2"),
            ("ICudaEngine", "num_bindings"), ("ICudaEngine", "get_binding_index"),
            ("NetworkDefinitionCreationFlag", "EXPLICIT_BATCH"), ("BuilderFlag", "FP16"), ("BuilderFlag", "INT8"),
            (None, "IInt8EntropyCalibrator2"), ("ParserError", "node_name")}
    return sorted(out, key=str)


@pytest.mark.parametrize("version", S.VERSIONS)
def test_fakes_match_real_names(version):
    names, fake = S.real(version), make_fake_trt(S.FAKE_VERSION[version])
    wrong = [f"{c or 'trt'}.{n}: real {'has' if names.has(c, n) else 'lacks'} it, the fake "
             f"{'has' if _fake_has(fake, c, n) else 'lacks'} it"
             for c, n in _all_touched() if names.has(c, n) != _fake_has(fake, c, n)]
    assert wrong == [], f"fake TensorRT {S.FAKE_VERSION[version]} vs real {version}: {wrong}"


@pytest.mark.parametrize("version", S.VERSIONS)
def test_fake_api_generation_matches_real(version):
    assert detect_api(make_fake_trt(S.FAKE_VERSION[version])) == \
        TrtApi(version=S.FAKE_VERSION[version], **EXPECTED_API[version])


# ---- test 4: call signatures against the documented arguments -------------------------------------
def _fits(call, overloads):
    n, kws = len(call.args), [k.arg for k in call.keywords]
    return any(n + len(kws) <= len(ov) and set(kws) <= set(ov[n:]) for ov in overloads)


@pytest.mark.parametrize("version", S.VERSIONS)
def test_sdk_calls_fit_documented_signatures(version):
    names = S.real(version)
    api = detect_api(names.stub())
    plans = S.all_plans(api)
    checked, bad = 0, []
    for u in S.sdk_uses():
        overloads = names.args.get(f"{u.cls}.{u.name}")
        if u.call is None or not overloads or not S.reachable(u, names, api, plans):
            continue
        checked += 1
        if not _fits(u.call, overloads):
            bad.append(f"{u.where()} called with {len(u.call.args)} args {[k.arg for k in u.call.keywords]}, "
                       f"documented {overloads}")
    assert checked >= 10 and bad == []


@pytest.mark.parametrize("version", S.VERSIONS)
def test_fake_methods_take_the_real_argument_names(version):
    names, fake = S.real(version), make_fake_trt(S.FAKE_VERSION[version])
    called = {(u.cls, u.name) for u in S.sdk_uses() if u.call is not None and u.cls}
    bad = []
    for cls, name in sorted(called):
        overloads = names.args.get(f"{cls}.{name}")
        fn = getattr(getattr(fake, cls, None), name, None)
        if not overloads or not inspect.isfunction(fn):
            continue
        params = [p for p in inspect.signature(fn).parameters][1:]
        if params not in overloads:
            bad.append(f"{cls}.{name}{tuple(params)} vs real {overloads}")
    assert bad == []

"""Legacy TensorRT calibration cache: format, version numbers, errors, and the calibrator adapter."""
import struct

import numpy as np
import pytest

from dynmm_edge.backends.cuda_buffers import HostDevice
from dynmm_edge.calibration import trt_cache as tc
from dynmm_edge.errors import BackendError, DataError


from tests.fakes import fake_tensorrt  # noqa: E402


def _fakes():
    return fake_tensorrt


@pytest.mark.parametrize("version,number", [("8.5.2", 8502), ("8.6.1", 8601), ("8.5.10", 8510),
                                            ("7.2.2", 7202), ("10.3.0", 100300), ("10.13.2", 101302),
                                            ("11.4.0", 110400)])
def test_version_int_both_layouts(version, number):
    assert tc.trt_version_int(version) == number
    assert tc.trt_version_str(number) == version


def test_version_errors():
    with pytest.raises(DataError, match="MAJOR.MINOR.PATCH"):
        tc.trt_version_int("ten")
    with pytest.raises(DataError):
        tc.trt_version_str(85)


def test_hex_convention_matches_published_caches():
    # big-endian float32 bit patterns
    assert tc.encode_scale(1.0 / 127.0) == "3c010204"
    assert tc.encode_scale(1.0) == "3f800000"
    # a line from a public TensorRT 7.2 MNIST cache, 'data: 3c008912': input in [0, 1) -> range just under 1
    scale = tc.decode_scale("3c008912")
    assert scale == pytest.approx(0.00784518, rel=1e-6)
    assert 0.99 < tc.dynamic_ranges({"data": scale})["data"] < 1.0
    assert tc.encode_scale(scale) == "3c008912"


def test_write_read_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    vals = np.concatenate([rng.uniform(1e-6, 2.0, 20), [0.0, 1e-40, 3.4e38]]).astype(np.float32)
    scales = {f"tensor_{i}": float(v) for i, v in enumerate(vals)}
    scales["(Unnamed Layer* 8) [Constant]_output"] = 0.25
    scales["/conv1/Conv_output_0: odd"] = 0.5  # names may hold ': '
    path = tc.write_cache(tmp_path / "calib.cache", scales, trt_version="10.3.0")
    text = path.read_text()
    assert text.splitlines()[0] == "TRT-100300-EntropyCalibration2"
    assert len(text.splitlines()) == len(scales) + 1
    version, back = tc.read_cache(path)
    assert version == 100300
    assert list(back) == list(scales)
    for name, s in scales.items():
        assert struct.pack(">f", back[name]) == struct.pack(">f", np.float32(s)), name


def test_dynamic_range_is_scale_times_127():
    ranges = tc.dynamic_ranges({"a": 0.5, "b": 1.0 / 127.0})
    assert ranges["a"] == pytest.approx(63.5)
    assert ranges["b"] == pytest.approx(1.0, rel=1e-6)
    assert tc.scales_from_ranges(ranges)["a"] == pytest.approx(0.5)


@pytest.mark.parametrize("text,message", [
    ("", "empty"),
    ("TRT-8502\nx: 3c010204\n", "header"),
    ("TRT-8502-FancyCalibration\n", "unknown calibration algorithm"),
    ("TRT-8502-EntropyCalibration2\nx 3c010204\n", "line 2"),
    ("TRT-8502-EntropyCalibration2\nx: 3c0102\n", "not 8 hex digits"),
    ("TRT-8502-EntropyCalibration2\nx: zzzzzzzz\n", "not 8 hex digits"),
    ("TRT-8502-EntropyCalibration2\nx: 3c010204\nx: 3c010204\n", "appears twice"),
    ("TRT-8502-EntropyCalibration2\nx: 7fc00000\n", "decodes to nan"),
    ("TRT-8502-EntropyCalibration2\nx: bf800000\n", "decodes to -1.0"),
])
def test_malformed_cache_errors_name_the_line(tmp_path, text, message):
    p = tmp_path / "bad.cache"
    p.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        tc.read_cache(p)
    assert str(p) in str(info.value)


def test_missing_and_binary_cache(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        tc.read_cache(tmp_path / "nope.cache")
    (tmp_path / "bin.cache").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DataError, match="not text"):
        tc.read_cache(tmp_path / "bin.cache")


def test_write_refuses_bad_scales(tmp_path):
    with pytest.raises(DataError, match="tensor 'x'"):
        tc.write_cache(tmp_path / "c", {"x": float("inf")})
    with pytest.raises(DataError, match="cannot be written"):
        tc.write_cache(tmp_path / "c", {"a\nb": 1.0})
    assert not (tmp_path / "c").exists()


def _batches(n, bs=2, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(-3, 3, (bs, 2, 8, 8)).astype(np.float32)} for _ in range(n)]


@pytest.mark.parametrize("version", ["8.5.3", "10.3.0"])
def test_calibrator_builds_and_writes_cache_then_reuses_it(tmp_path, version):
    from dynmm_edge.export.trt_build import build_engine, read_sidecar
    fakes = _fakes()
    trt = fakes.make_fake_trt(version)
    onnx_path = fakes.make_tiny_onnx(tmp_path / "gate.onnx")
    batches = _batches(3)
    cache = tmp_path / "gate.calib.cache"
    calib = tc.make_entropy_calibrator(batches, 2, cache, trt_module=trt, device=HostDevice())
    assert isinstance(calib, trt.IInt8EntropyCalibrator2)
    engine = build_engine(onnx_path, "int8", trt_module=trt, calibrator=calib, cache_dir=tmp_path / "eng",
                          gpu={"name": "Fake", "compute_capability": "8.7"})
    assert calib.batches == 3
    assert trt._state["calibration"] == "3 batches"
    cfg = trt._state["configs"][-1]
    assert cfg.get_flag(trt.BuilderFlag.INT8) and cfg.int8_calibrator is calib
    assert cfg.get_calibration_profile().get_shape("x") == [(2, 2, 8, 8)] * 3  # fixed calibration batch
    side = read_sidecar(engine)
    assert side["calibrated"] is True and side["builder_flags"] == ["INT8"]
    vint, scales = tc.read_cache(cache)
    assert vint == tc.trt_version_int(version)
    amax = max(float(np.abs(b["x"]).max()) for b in batches)
    assert scales["x"] == pytest.approx(amax / 127.0, rel=1e-6)  # the pointers carried the real data

    # second build (different workspace -> new engine) reads the cache and pulls no batches
    calib2 = tc.make_entropy_calibrator(_batches(3, seed=1), 2, cache, trt_module=trt, device=HostDevice())
    build_engine(onnx_path, "int8", trt_module=trt, calibrator=calib2, cache_dir=tmp_path / "eng",
                 workspace_mb=256, gpu={"name": "Fake", "compute_capability": "8.7"})
    assert calib2.batches == 0 and trt._state["calibration"] == "from-cache"


def test_cache_from_other_version_is_ignored(tmp_path):
    fakes = _fakes()
    trt = fakes.make_fake_trt("10.3.0")
    cache = tc.write_cache(tmp_path / "c.cache", {"x": 0.1}, trt_version="8.5.2")
    calib = tc.make_entropy_calibrator(_batches(1), 2, cache, trt_module=trt, device=HostDevice())
    assert calib.read_calibration_cache() is None
    assert calib.stale_cache_version == 8502


def test_calibrator_reports_bad_batches(tmp_path):
    from dynmm_edge.export.trt_build import build_engine
    fakes = _fakes()
    trt = fakes.make_fake_trt("8.5.3")
    onnx_path = fakes.make_tiny_onnx(tmp_path / "gate.onnx")
    bad = [{"x": np.zeros((3, 2, 8, 8), np.float32)}]  # batch 3, calibrator says 2
    calib = tc.make_entropy_calibrator(bad, 2, tmp_path / "c.cache", trt_module=trt, device=HostDevice())
    with pytest.raises(BackendError, match="expected batch dimension 2"):
        build_engine(onnx_path, "int8", trt_module=trt, calibrator=calib, cache_dir=tmp_path / "eng",
                     gpu={"name": "Fake", "compute_capability": "8.7"})
    assert not list((tmp_path / "eng").glob("*.engine"))


def test_trt11_has_no_implicit_calibration(tmp_path):
    trt = _fakes().make_fake_trt("11.4.0")
    with pytest.raises(BackendError, match="removed implicit INT8 calibration.*Q/DQ"):
        tc.make_entropy_calibrator(_batches(1), 2, tmp_path / "c.cache", trt_module=trt, device=HostDevice())

import sys
from pathlib import Path

import pytest

from dynmm_edge.errors import DataError
from dynmm_edge.power import discover, probe_all
from dynmm_edge.power.ina3221 import Ina3221Meter
from dynmm_edge.power.rapl import RaplMeter

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples" / "power"


@pytest.fixture
def no_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)


def _nothing(tmp_path):
    return dict(ina3221={"root": str(tmp_path)}, tegrastats={"binary": str(tmp_path / "none")},
                rapl={"root": str(tmp_path)})


def test_none_is_none():
    assert discover("none") is None


def test_auto_finds_nothing_returns_none(tmp_path, no_nvml):
    assert discover("auto", **_nothing(tmp_path)) is None
    reasons = probe_all(**_nothing(tmp_path))
    assert list(reasons) == ["ina3221", "tegrastats", "nvml", "rapl"]
    assert not any(ok for ok, _ in reasons.values())


def test_auto_order_prefers_ina3221_then_falls_to_rapl(tmp_path, no_nvml):
    opts = _nothing(tmp_path)
    opts["ina3221"] = {"root": str(SAMPLES / "ina3221_hwmon_orin_nano"), "start": False}
    opts["rapl"] = {"root": str(SAMPLES / "rapl_two_packages")}
    m = discover("auto", **opts)
    assert isinstance(m, Ina3221Meter)
    m.close()
    opts["ina3221"] = {"root": str(tmp_path)}
    m = discover("auto", **opts)
    assert isinstance(m, RaplMeter)
    m.close()


def test_explicit_unavailable_kind_raises_with_reason(tmp_path, no_nvml):
    with pytest.raises(DataError, match=r"'rapl' is not available: no RAPL package domains"):
        discover("rapl", root=str(tmp_path))
    with pytest.raises(DataError, match="'nvml' is not available.*nvidia-ml-py"):
        discover("nvml")
    with pytest.raises(DataError, match="unknown power meter kind 'watts'"):
        discover("watts")
    with pytest.raises(DataError, match="unknown keys"):
        discover("auto", root="/x")


def test_explicit_kind_opens_meter():
    m = discover("ina3221", root=str(SAMPLES / "ina3221_iio_nano"), start=False)
    assert m.describe()["total"]["rail"] == "POM_5V_IN"
    m.close()

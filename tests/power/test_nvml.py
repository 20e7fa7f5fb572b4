import sys
import types

import pytest

from dynmm_edge.errors import DataError
from dynmm_edge.power.nvml import NvmlMeter
from dynmm_edge.testing import FakeClock


def fake_pynvml(energy_mj=None, power_mw=None, init_error=False):
    """A stand-in for nvidia-ml-py: counters come from the lists (last value repeats)."""
    mod = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    mod.NVMLError, mod.NVMLError_NotSupported = NVMLError, NVMLError_NotSupported
    state = {"init": 0, "shutdown": 0, "e": list(energy_mj or []), "p": list(power_mw or [])}
    mod.state = state

    def nvmlInit():
        if init_error:
            raise NVMLError("NVML Shared Library Not Found")
        state["init"] += 1

    def nvmlShutdown():
        state["shutdown"] += 1

    def pop(key):
        if not state[key]:
            raise NVMLError_NotSupported("Not Supported")
        return state[key].pop(0) if len(state[key]) > 1 else state[key][0]

    mod.nvmlInit, mod.nvmlShutdown = nvmlInit, nvmlShutdown
    mod.nvmlDeviceGetHandleByIndex = lambda i: ("gpu", i)
    mod.nvmlDeviceGetName = lambda h: b"NVIDIA Fake GPU"
    mod.nvmlDeviceGetTotalEnergyConsumption = lambda h: pop("e")
    mod.nvmlDeviceGetPowerUsage = lambda h: pop("p")
    return mod


def test_energy_counter_mode(monkeypatch):
    mod = fake_pynvml(energy_mj=[1_000_000, 1_000_000, 1_004_000, 1_010_000])
    monkeypatch.setitem(sys.modules, "pynvml", mod)
    assert NvmlMeter.probe()[0]
    clk = FakeClock()
    m = NvmlMeter(clock=clk)  # probe consumed 1 value, constructor the next (origin 1_000_000)
    assert m.mode == "total_energy"
    clk.t = 1.0
    assert m.energy_j() == pytest.approx(4.0)
    clk.t = 2.0
    assert m.energy_j() == pytest.approx(10.0)
    assert m.power_w() == pytest.approx(6.0)
    assert m.describe()["mode"] == "total_energy" and "Fake" in m.describe()["source"]
    m.close()
    assert mod.state["shutdown"] >= 2


def test_power_usage_fallback_integrates(monkeypatch):
    mod = fake_pynvml(power_mw=[50_000, 50_000, 70_000])
    monkeypatch.setitem(sys.modules, "pynvml", mod)
    clk = FakeClock()
    m = NvmlMeter(clock=clk, start=False)
    assert m.mode == "power_usage"
    # constructor probes GetPowerUsage once (50 W) and the poller takes its first sample (50 W)
    clk.t = 1.0
    m._poller.sample()  # 70 W
    assert m._poller.energy_j() == pytest.approx(60.0)
    assert m.power_w() == pytest.approx(70.0)
    m.close()


def test_not_supported_means_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())  # Jetson: both queries NotSupported
    ok, reason = NvmlMeter.probe()
    assert not ok and "not supported" in reason.lower()
    with pytest.raises(DataError, match="NVML meter unavailable"):
        NvmlMeter()


def test_library_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_error=True))
    ok, reason = NvmlMeter.probe()
    assert not ok and "nvmlInit" in reason
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails -> MissingDependency -> unavailable
    ok, reason = NvmlMeter.probe()
    assert not ok and "nvidia-ml-py" in reason

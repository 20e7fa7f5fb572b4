"""NVML energy for discrete NVIDIA GPUs (board power of one GPU, not the host).

Prefers nvmlDeviceGetTotalEnergyConsumption (mJ since driver load, Volta+): a counter delta is exact
regardless of how short a run is. Falls back to integrating nvmlDeviceGetPowerUsage (mW; on Ampere+ a
1 s moving average, so short runs are smeared). Any NVMLError (NotSupported on Jetson, library not
found on machines without a driver) means "meter unavailable". pynvml (package nvidia-ml-py) is
imported lazily so the runtime keeps importing with numpy alone.
"""
from __future__ import annotations

import threading
import time
from typing import Dict, Optional, Tuple

from dynmm_edge import _lazy
from dynmm_edge.errors import DataError, MissingDependency
from dynmm_edge.power.base import Clock, Reading, SampledMeter


def _nvml():
    return _lazy.require("pynvml", "NVML power measurement")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _PowerPoller(SampledMeter):
    """Fallback: nvmlDeviceGetPowerUsage (mW) integrated by the shared sampled-meter machinery."""

    name = "nvml"

    def __init__(self, nvml, handle, period_s: float, clock: Clock, start: bool) -> None:
        self._nvml_mod, self._handle = nvml, handle
        super().__init__(period_s=period_s, clock=clock, start=start)

    def _read(self) -> Reading:
        try:
            mw = float(self._nvml_mod.nvmlDeviceGetPowerUsage(self._handle))
        except self._nvml_mod.NVMLError:
            return None, {}
        return mw, {"GPU": mw}


class NvmlMeter:
    """GPU `index` energy: counter mode ('total_energy') or power-integration mode ('power_usage')."""

    name = "nvml"

    def __init__(self, index: int = 0, period_s: float = 0.05, clock: Clock = time.monotonic,
                 start: bool = True, prefer_counter: bool = True) -> None:
        try:
            nvml = _nvml()
        except MissingDependency as exc:
            raise DataError(f"NVML meter unavailable: {exc}") from exc
        self._nvml = nvml
        self.index, self.period_s, self._clock = int(index), float(period_s), clock
        self._lock = threading.Lock()
        self._poller: Optional[_PowerPoller] = None
        self._closed = False
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            raise DataError(f"NVML meter unavailable: nvmlInit failed: {exc}") from exc
        try:
            self._handle = nvml.nvmlDeviceGetHandleByIndex(self.index)
            self.gpu_name = _text(nvml.nvmlDeviceGetName(self._handle))
            self.mode = None
            if prefer_counter:
                try:
                    self._e0_mj = float(nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
                    self._last = (clock(), self._e0_mj)
                    self._prev = self._last
                    self.mode = "total_energy"
                except nvml.NVMLError:
                    self.mode = None
            if self.mode is None:
                nvml.nvmlDeviceGetPowerUsage(self._handle)  # raises NotSupported where there is no sensor
                self._poller = _PowerPoller(nvml, self._handle, self.period_s, clock, start)
                self.mode = "power_usage"
        except nvml.NVMLError as exc:
            nvml.nvmlShutdown()
            raise DataError(f"NVML meter unavailable for GPU {self.index}: {exc}") from exc

    @classmethod
    def probe(cls, index: int = 0, **_ignored) -> Tuple[bool, str]:
        try:
            nvml = _nvml()
        except MissingDependency as exc:
            return False, str(exc)
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            return False, f"nvmlInit failed: {exc}"
        try:
            h = nvml.nvmlDeviceGetHandleByIndex(int(index))
            try:
                nvml.nvmlDeviceGetTotalEnergyConsumption(h)
                return True, f"NVML total energy counter on GPU {index} ({_text(nvml.nvmlDeviceGetName(h))})"
            except nvml.NVMLError:
                nvml.nvmlDeviceGetPowerUsage(h)
                return True, f"NVML power usage (integrated) on GPU {index} ({_text(nvml.nvmlDeviceGetName(h))})"
        except nvml.NVMLError as exc:
            return False, f"NVML power/energy not supported on GPU {index}: {exc}"
        finally:
            nvml.nvmlShutdown()

    def _read_counter(self) -> None:
        mj = float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        t = self._clock()
        with self._lock:
            if mj < self._last[1]:  # driver reload resets the counter; keep the joules so far
                self._e0_mj -= self._last[1] - mj
            self._prev, self._last = self._last, (t, mj)

    def energy_j(self) -> float:
        if self._poller is not None:
            return self._poller.energy_j()
        if not self._closed:
            self._read_counter()
        with self._lock:
            return (self._last[1] - self._e0_mj) / 1000.0

    def power_w(self) -> Optional[float]:
        if self._poller is not None:
            return self._poller.power_w()
        with self._lock:
            (t0, e0), (t1, e1) = self._prev, self._last
        if t1 <= t0:
            return None
        return (e1 - e0) / 1000.0 / (t1 - t0)  # mean power between the last two counter reads

    def rails(self) -> Dict[str, float]:
        if self._poller is not None:
            return self._poller.rails()
        p = self.power_w()
        return {} if p is None else {"GPU": p * 1000.0}

    def describe(self) -> dict:
        return {"kind": "nvml", "source": f"NVML GPU {self.index} ({self.gpu_name})", "mode": self.mode,
                "rails": ["GPU"], "period_s": self.period_s if self._poller is not None else None,
                "total": {"rail": "GPU", "mode": "board power of the GPU only (host CPU/RAM not included)"}}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._poller is not None:
            self._poller.close()
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

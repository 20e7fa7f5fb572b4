"""Power meters: INA3221 sysfs, tegrastats, NVML, RAPL; discover() picks one or returns None."""
from dynmm_edge.power.base import EnergyWindow, PowerMeter, SampledMeter, TrapezoidIntegrator, measure
from dynmm_edge.power.discover import AUTO_ORDER, KINDS, METERS, discover, probe_all

__all__ = ["PowerMeter", "SampledMeter", "TrapezoidIntegrator", "EnergyWindow", "measure",
           "discover", "probe_all", "METERS", "KINDS", "AUTO_ORDER"]

"""A scripted power meter: the SampledMeter machinery with watts from a constant, a list or f(t)."""
import time
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

from dynmm_edge.power.base import Clock, Reading, SampledMeter


class FakeMeter(SampledMeter):
    """Test meter: constant watts, a list of watts (one per sample, last one repeats) or f(t) -> watts."""

    name = "fake"

    def __init__(self, power: Union[float, Sequence[float], Callable[[float], float]] = 5.0,
                 period_s: float = 0.01, clock: Clock = time.monotonic, start: bool = True,
                 rails: Optional[Dict[str, float]] = None, sample_on_read: bool = True) -> None:
        self._power = power
        self._script_i = 0
        self._fixed_rails = dict(rails or {})
        self._t0 = clock()
        super().__init__(period_s=period_s, clock=clock, start=start, sample_on_read=sample_on_read)

    @classmethod
    def probe(cls, **opts) -> Tuple[bool, str]:
        return True, "fake meter (tests)"

    def _read(self) -> Reading:
        p = self._power
        if callable(p):
            watts = float(p(self._clock() - self._t0))
        elif isinstance(p, (int, float)):
            watts = float(p)
        else:
            seq = list(p)
            watts = float(seq[min(self._script_i, len(seq) - 1)])
            self._script_i += 1
        return watts * 1000.0, dict(self._fixed_rails) or {"TOTAL": watts * 1000.0}

    def describe(self) -> dict:
        return {"kind": "fake", "source": "scripted", "rails": sorted(self.rails()), "period_s": self.period_s,
                "total": {"rail": "TOTAL", "mode": "scripted"}}

"""PowerMeter protocol and the trapezoid integrator shared by sampled meters.

Why a protocol: the bench compares static and dynamic execution in joules per frame, and the same
loop has to work with an INA3221 on a Jetson, tegrastats, NVML on a discrete GPU, RAPL on x86, or no
meter at all. Absence of a meter is `None` (from discover), never a meter that reports zeros, so a
report can say "no power meter" instead of printing a misleading 0 J.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Iterable, Optional, Protocol, Tuple, runtime_checkable

Clock = Callable[[], float]


@runtime_checkable
class PowerMeter(Protocol):
    """What the bench needs from a meter (see docs/DESIGN.md)."""

    name: str

    def energy_j(self) -> float:
        """Cumulative joules since the meter started (monotonic non-decreasing)."""

    def power_w(self) -> Optional[float]:
        """Latest total power in watts, or None before the first reading."""

    def rails(self) -> Dict[str, float]:
        """Latest per-rail power in mW ({} for meters without rails)."""

    def describe(self) -> dict:
        """kind, source, rails, period and how the total is formed; goes into the bench JSON."""

    def close(self) -> None:
        """Stop background threads / subprocesses; idempotent."""


class MeterBase:
    """Context-manager plumbing and the probe() convention shared by every meter."""

    name = "meter"

    @classmethod
    def probe(cls, **opts) -> Tuple[bool, str]:  # pragma: no cover - overridden
        return False, f"{cls.__name__}.probe is not implemented"

    def power_w(self) -> Optional[float]:
        return None

    def rails(self) -> Dict[str, float]:
        return {}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TrapezoidIntegrator:
    """Integrates power samples (t seconds, watts) with the trapezoid rule; thread-safe.

    Kept separate from the threads so tests can drive it with a fake clock and known samples.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._t: Optional[float] = None
        self._p: Optional[float] = None
        self._energy = 0.0
        self.samples = 0

    def add(self, t: float, power_w: float) -> None:
        with self._lock:
            if self._t is not None:
                dt = t - self._t
                if dt < 0:
                    raise ValueError(f"power sample time went backwards ({self._t} -> {t}); use a monotonic clock")
                self._energy += 0.5 * (self._p + power_w) * dt
            self._t, self._p = t, float(power_w)
            self.samples += 1

    @property
    def energy_j(self) -> float:
        with self._lock:
            return self._energy

    @property
    def last_power_w(self) -> Optional[float]:
        with self._lock:
            return self._p


Reading = Tuple[Optional[float], Dict[str, float]]  # (total mW or None, per-rail mW)


class SampledMeter(MeterBase):
    """Polls `_read()` every `period_s` in a daemon thread and integrates the total power.

    `start=False` leaves the thread off so tests (or callers with their own cadence) call
    `sample()` themselves; `clock` is injectable for the same reason.
    energy_j() takes one fresh sample first (when `sample_on_read`), so a measurement window that
    ends between two polls still counts its tail.
    """

    def __init__(self, period_s: float = 0.05, clock: Clock = time.monotonic, start: bool = True,
                 sample_on_read: bool = True) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self.period_s = float(period_s)
        self._clock = clock
        self._integ = TrapezoidIntegrator()
        self._rails: Dict[str, float] = {}
        self._sample_lock = threading.Lock()
        self._sample_on_read = sample_on_read
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.read_errors = 0
        self.sample()  # first point: the integral starts here
        if start:
            self._thread = threading.Thread(target=self._loop, name=f"{self.name}-meter", daemon=True)
            self._thread.start()

    def _read(self) -> Reading:  # pragma: no cover - overridden
        raise NotImplementedError

    def sample(self) -> Optional[float]:
        """Take one reading now; returns total watts or None when the total was unreadable."""
        with self._sample_lock:
            total_mw, rails = self._read()
            t = self._clock()
            if rails:
                self._rails = dict(rails)
            if total_mw is None:
                self.read_errors += 1
                return None
            self._integ.add(t, total_mw / 1000.0)
            return total_mw / 1000.0

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.sample()
            except Exception:  # a flaky sysfs read must not kill the measurement thread
                self.read_errors += 1

    def energy_j(self) -> float:
        if self._sample_on_read and not self._stop.is_set():
            self.sample()
        return self._integ.energy_j

    def power_w(self) -> Optional[float]:
        return self._integ.last_power_w

    def rails(self) -> Dict[str, float]:
        return dict(self._rails)

    @property
    def samples(self) -> int:
        return self._integ.samples

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, 4 * self.period_s))
            self._thread = None


class EnergyWindow:
    """Result of measure(): joules and seconds over a with-block; all None without a meter."""

    def __init__(self) -> None:
        self.joules: Optional[float] = None
        self.seconds: Optional[float] = None

    @property
    def mean_power_w(self) -> Optional[float]:
        if self.joules is None or not self.seconds:
            return None
        return self.joules / self.seconds

    def per_frame(self, frames: int) -> Optional[float]:
        if self.joules is None or frames <= 0:
            return None
        return self.joules / frames


class measure:
    """`with measure(meter) as w: run()` -> w.joules, w.seconds, w.mean_power_w (None if meter is None)."""

    def __init__(self, meter: Optional[PowerMeter], clock: Clock = time.monotonic) -> None:
        self.meter = meter
        self._clock = clock
        self.window = EnergyWindow()

    def __enter__(self) -> EnergyWindow:
        self._t0 = self._clock()
        self._e0 = self.meter.energy_j() if self.meter is not None else None
        return self.window

    def __exit__(self, *exc) -> None:
        t1 = self._clock()
        self.window.seconds = t1 - self._t0
        if self.meter is not None:
            self.window.joules = max(0.0, self.meter.energy_j() - self._e0)


def read_number(path) -> Optional[float]:
    """Read one integer/float from a sysfs-style file; None when missing, unreadable or garbled."""
    try:
        with open(path, "r") as fh:
            text = fh.read().strip()
        return float(text)
    except (OSError, ValueError):
        return None


def read_text(path) -> Optional[str]:
    try:
        with open(path, "r") as fh:
            return fh.read().strip()
    except OSError:
        return None


def pick_total(rails_mw: Dict[str, Optional[float]], total_names: Iterable[str]) -> Tuple[Optional[str], str]:
    """Choose the rail that already is the board/module input total; (None, 'sum') when there is none."""
    for name in total_names:
        if name in rails_mw:
            return name, "rail"
    return None, "sum of rails (no total rail)"

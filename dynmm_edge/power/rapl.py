"""x86 CPU package energy from Linux powercap (RAPL): <root>/intel-rapl:N/{name,energy_uj,max_energy_range_uj}.

Counters, not power samples: joules = counter delta, exact for any run length as long as each
counter wraps at most once between two reads (it wraps at max_energy_range_uj, typically after
minutes to hours). Only top-level package domains are summed: sub-domains (intel-rapl:0:0 core,
uncore, dram) are inside the package, and 'psys' (platform) already contains the packages.
Since Linux 5.10 energy_uj is root-only on many distributions; probe() says so instead of failing later.
"""
from __future__ import annotations

import glob
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from dynmm_edge.errors import DataError
from dynmm_edge.power.base import Clock, MeterBase, read_number, read_text

DEFAULT_ROOT = "/sys/class/powercap"


@dataclass(frozen=True)
class RaplDomain:
    name: str
    path: str
    max_range_uj: float


def find_domains(root: str = DEFAULT_ROOT) -> List[RaplDomain]:
    """Top-level package domains under `root` (intel-rapl:N with name package-*)."""
    out = []
    for d in sorted(glob.glob(os.path.join(root, "intel-rapl:*"))):
        if not re.fullmatch(r"intel-rapl:\d+", os.path.basename(d)):
            continue
        name = read_text(os.path.join(d, "name"))
        if name is None or not name.startswith("package"):
            continue
        rng = read_number(os.path.join(d, "max_energy_range_uj"))
        if rng is None or rng <= 0:
            continue
        out.append(RaplDomain(name, d, rng))
    return out


def counter_delta(prev_uj: float, cur_uj: float, max_range_uj: float) -> float:
    """Energy between two reads of one counter in uJ, assuming at most one wrap."""
    if cur_uj >= prev_uj:
        return cur_uj - prev_uj
    return cur_uj + (max_range_uj - prev_uj)


class RaplMeter(MeterBase):
    """Sum of package energy counters; updated on every energy_j() call (and by an optional poll thread)."""

    name = "rapl"

    def __init__(self, root: str = DEFAULT_ROOT, clock: Clock = time.monotonic, poll_s: Optional[float] = None) -> None:
        self.root = str(root)
        self._domains = find_domains(self.root)
        if not self._domains:
            raise DataError(f"no RAPL package domains under {self.root} (intel-rapl:N/name = package-*)")
        self._clock = clock
        self._lock = threading.Lock()
        self._last: Dict[str, float] = {}
        for d in self._domains:
            v = read_number(os.path.join(d.path, "energy_uj"))
            if v is None:
                raise DataError(f"cannot read {os.path.join(d.path, 'energy_uj')} (root-only on Linux >= 5.10?)")
            self._last[d.path] = v
        self._energy_uj = 0.0
        self._per_domain_mw: Dict[str, float] = {}
        self._t_last = clock()
        self._power: Optional[float] = None
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread = None
        if poll_s:
            # Long runs at high power can wrap a counter twice between energy_j() calls; polling prevents that.
            self._thread = threading.Thread(target=self._loop, name="rapl-meter", daemon=True)
            self._thread.start()

    @classmethod
    def probe(cls, root: str = DEFAULT_ROOT, **_ignored) -> Tuple[bool, str]:
        doms = find_domains(str(root))
        if not doms:
            return False, f"no RAPL package domains under {root}"
        for d in doms:
            f = os.path.join(d.path, "energy_uj")
            if read_number(f) is None:
                return False, f"{f} is not readable (root-only on Linux >= 5.10)"
        return True, f"RAPL {[d.name for d in doms]} under {root}"

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.update()

    def update(self) -> None:
        with self._lock:
            t = self._clock()
            step = 0.0
            dt = t - self._t_last
            for d in self._domains:
                cur = read_number(os.path.join(d.path, "energy_uj"))
                if cur is None:
                    continue  # transient read failure: the next read covers the gap
                delta = counter_delta(self._last[d.path], cur, d.max_range_uj)
                self._last[d.path] = cur
                step += delta
                if dt > 0:
                    self._per_domain_mw[d.name] = delta / 1000.0 / dt
            self._energy_uj += step
            if dt > 0:
                self._power = step / 1e6 / dt
                self._t_last = t

    def energy_j(self) -> float:
        if not self._stop.is_set():
            self.update()
        with self._lock:
            return self._energy_uj / 1e6

    def power_w(self) -> Optional[float]:
        with self._lock:
            return self._power

    def rails(self) -> Dict[str, float]:
        with self._lock:
            return dict(self._per_domain_mw)

    def describe(self) -> dict:
        return {"kind": "rapl", "source": self.root, "rails": [d.name for d in self._domains],
                "period_s": self.poll_s,
                "total": {"rail": None, "mode": "sum of CPU package counters (no GPU, no DRAM, no board)"}}

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

"""tegrastats line parser and a meter that runs `tegrastats --interval N` and integrates the total rail.

Used where sysfs INA3221 files are not readable (containers without /sys/bus/i2c) but the binary is.
Rail fields seen in the wild (power in mW):
  JetPack 4 Nano:      "POM_5V_IN 2003/2003 POM_5V_GPU 0/0 POM_5V_CPU 320/320"     (cur/avg, no unit)
  JetPack 4 AGX Xav.:  "GPU 0/0 CPU 311/311 SOC 933/933 CV 0/0 VDDRQ 155/155 SYS5V 1809/1809"
  JetPack 5/6:         "VDD_IN 5284mW/5284mW VDD_CPU_GPU_CV 1120mW/1120mW VDD_SOC 1441mW/1441mW"
  JetPack 7.2:         "VDD_IN 5284mW/5284mW/6010mW"                               (cur/avg/peak)
Memory fields ("RAM 2448/30536MB", "SWAP 0/15268MB", "IRAM 0/252kB") share the NAME a/b shape but
carry a unit other than mW, so they never match.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from typing import Dict, Optional, Sequence, Tuple

from dynmm_edge.errors import DataError
from dynmm_edge.power.base import Clock, MeterBase, TrapezoidIntegrator, pick_total

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
_RAIL = re.compile(
    r"(?:(?<=\s)|^)(?P<name>[A-Za-z][A-Za-z0-9_]*) "
    r"(?P<cur>\d+)(?:mW)?/(?P<avg>\d+)(?:mW)?(?:/(?P<peak>\d+)(?:mW)?)?(?=\s|$)"
)


def parse_rails(line: str) -> Dict[str, Tuple[float, float, Optional[float]]]:
    """All power rails in one tegrastats line: name -> (current, average, peak or None) in mW."""
    out: Dict[str, Tuple[float, float, Optional[float]]] = {}
    for m in _RAIL.finditer(line):
        peak = m.group("peak")
        out[m.group("name")] = (float(m.group("cur")), float(m.group("avg")), float(peak) if peak is not None else None)
    return out


def parse_tegrastats(line: str) -> Dict[str, float]:
    """Per-rail current power in mW from one tegrastats line ({} when the line has no power rails)."""
    return {name: cur for name, (cur, _avg, _peak) in parse_rails(line).items()}


def total_mw(rails_mw: Dict[str, float], total_rail: Optional[str] = None,
             total_names: Sequence[str] = TOTAL_RAILS) -> Tuple[Optional[float], Optional[str], str]:
    """(total mW, rail used or None, mode): the input rail if present, else the sum of all rails."""
    if not rails_mw:
        return None, None, "no rails"
    if total_rail is not None:
        return rails_mw.get(total_rail), total_rail, "rail"
    name, mode = pick_total(rails_mw, total_names)
    if name is not None:
        return rails_mw[name], name, mode
    return sum(rails_mw.values()), None, mode


class TegrastatsMeter(MeterBase):
    """Runs tegrastats as a subprocess; each printed line is one power sample stamped on arrival."""

    name = "tegrastats"

    def __init__(self, binary: str = "tegrastats", interval_ms: int = 100, total_rail: Optional[str] = None,
                 clock: Clock = time.monotonic, first_line_timeout_s: float = 5.0) -> None:
        path = self._resolve(binary)
        if path is None:
            raise DataError(f"tegrastats binary {binary!r} not found or not executable")
        if int(interval_ms) < 1:
            raise ValueError(f"interval_ms must be >= 1, got {interval_ms}")
        self.binary, self.interval_ms, self._total_rail = path, int(interval_ms), total_rail
        self._clock = clock
        self._integ = TrapezoidIntegrator()
        self._rails: Dict[str, float] = {}
        self._total_used: Optional[str] = None
        self._total_mode = "unknown until first line"
        self._first = threading.Event()
        self.lines = 0
        self._proc = subprocess.Popen([path, "--interval", str(self.interval_ms)], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._thread = threading.Thread(target=self._reader, name="tegrastats-meter", daemon=True)
        self._thread.start()
        if not self._first.wait(first_line_timeout_s):
            self.close()
            raise DataError(f"{path} printed no line with power rails within {first_line_timeout_s} s")

    @staticmethod
    def _resolve(binary: str) -> Optional[str]:
        if os.sep in binary:
            return binary if os.path.isfile(binary) and os.access(binary, os.X_OK) else None
        return shutil.which(binary)

    @classmethod
    def probe(cls, binary: str = "tegrastats", **_ignored) -> Tuple[bool, str]:
        path = cls._resolve(binary)
        if path is None:
            return False, f"tegrastats binary {binary!r} not found on PATH or not executable"
        return True, f"tegrastats at {path}"

    def _reader(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            rails = parse_tegrastats(line)
            t = self._clock()
            if not rails:
                continue
            total, used, mode = total_mw(rails, self._total_rail)
            self._rails, self._total_used, self._total_mode = rails, used, mode
            self.lines += 1
            if total is not None:
                self._integ.add(t, total / 1000.0)
                self._first.set()

    def energy_j(self) -> float:
        return self._integ.energy_j

    def power_w(self) -> Optional[float]:
        return self._integ.last_power_w

    def rails(self) -> Dict[str, float]:
        return dict(self._rails)

    def describe(self) -> dict:
        return {"kind": "tegrastats", "source": f"{self.binary} --interval {self.interval_ms}",
                "rails": sorted(self._rails), "period_s": self.interval_ms / 1000.0,
                "total": {"rail": self._total_used, "mode": self._total_mode}}

    def close(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stdout is not None:
            self._thread.join(timeout=2.0)
            proc.stdout.close()

"""Jetson on-module INA3221 power monitors read straight from sysfs (no tegrastats subprocess).

Two kernel layouts exist and both are enumerated, never hard-coded, because rail names differ per
module (Nano: POM_5V_IN..., Xavier NX / Orin NX / Orin Nano: VDD_IN, VDD_CPU_GPU_CV, VDD_SOC;
AGX Orin: VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0 on one chip, more on a second):
  JetPack 5+ (hwmon):  <root>/ina3221/<i2c>/hwmon/hwmonK/in{N}_label, in{N}_input [mV], curr{N}_input [mA]
  JetPack 4  (iio):    <root>/ina3221x/<i2c>/iio:deviceK/rail_name_{N}, in_power{N}_input [mW]
                       (or in_voltage{N}_input [mV] * in_current{N}_input [mA])
Total: a rail that already is the module input (VDD_IN, POM_5V_IN) when present. Sub-rails are never
added to it (they are inside it). Modules without such a rail (AGX Xavier, AGX Orin) get the sum of
their rails, and describe() says so, because that sum misses whatever is not monitored.
"""
from __future__ import annotations

import glob
import os
import re
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from dynmm_edge.errors import DataError
from dynmm_edge.power.base import Clock, Reading, SampledMeter, pick_total, read_number, read_text

DEFAULT_ROOT = "/sys/bus/i2c/drivers"
# Rails that measure the whole module input. VIN_SYS_5V0 is deliberately absent: on AGX Xavier/Orin it
# is a sibling supply next to the GPU/CPU rails (its own INA channel), not their parent.
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
_SKIP_LABEL = re.compile(r"^(nc|n/a|sum of .*|)$", re.IGNORECASE)


@dataclass(frozen=True)
class Rail:
    """One monitored channel: how to read it (power file, or voltage+current files)."""

    label: str
    layout: str            # 'hwmon' | 'iio'
    device: str            # folder holding the channel files
    channel: int
    power_file: Optional[str] = None   # mW
    voltage_file: Optional[str] = None  # mV
    current_file: Optional[str] = None  # mA

    def read_mw(self) -> Optional[float]:
        if self.power_file is not None:
            p = read_number(self.power_file)
            if p is not None:
                return p
        if self.voltage_file is None or self.current_file is None:
            return None
        mv, ma = read_number(self.voltage_file), read_number(self.current_file)
        if mv is None or ma is None:
            return None
        return mv * ma / 1000.0


def _channel(path: str, pattern: str) -> int:
    m = re.search(pattern, os.path.basename(path))
    return int(m.group(1))


def find_rails(root: str = DEFAULT_ROOT) -> List[Rail]:
    """All labelled INA3221 channels under `root` (both layouts, every chip), in a stable order."""
    rails: List[Rail] = []
    for label_file in sorted(glob.glob(os.path.join(root, "ina3221", "*", "hwmon", "hwmon*", "in*_label"))):
        n = _channel(label_file, r"^in(\d+)_label$")
        dev = os.path.dirname(label_file)
        label = read_text(label_file)
        volt, curr = os.path.join(dev, f"in{n}_input"), os.path.join(dev, f"curr{n}_input")
        if label is None or _SKIP_LABEL.match(label) or not os.path.exists(curr):
            continue  # unlabeled, not connected, or the shunt-sum channel (no matching current)
        rails.append(Rail(label, "hwmon", dev, n, voltage_file=volt, current_file=curr))
    for name_file in sorted(glob.glob(os.path.join(root, "ina3221x", "*", "iio:device*", "rail_name_*"))):
        n = _channel(name_file, r"^rail_name_(\d+)$")
        dev = os.path.dirname(name_file)
        label = read_text(name_file)
        if label is None or _SKIP_LABEL.match(label):
            continue
        rails.append(Rail(label, "iio", dev, n, power_file=os.path.join(dev, f"in_power{n}_input"),
                          voltage_file=os.path.join(dev, f"in_voltage{n}_input"),
                          current_file=os.path.join(dev, f"in_current{n}_input")))
    # Same label on two chips (rare, but seen with carrier-board monitors): keep both, disambiguate.
    seen: Dict[str, int] = {}
    for r in rails:
        seen[r.label] = seen.get(r.label, 0) + 1
    out = []
    for r in rails:
        if seen[r.label] > 1:
            chip = os.path.basename(os.path.dirname(os.path.dirname(r.device)) if r.layout == "hwmon"
                                    else os.path.dirname(r.device))
            r = Rail(f"{r.label}@{chip}", r.layout, r.device, r.channel, r.power_file, r.voltage_file, r.current_file)
        out.append(r)
    return out


class Ina3221Meter(SampledMeter):
    """Polls every INA3221 rail each `period_s` and integrates the total (see module docstring)."""

    name = "ina3221"

    def __init__(self, root: str = DEFAULT_ROOT, period_s: float = 0.05, total_rail: Optional[str] = None,
                 total_names: Sequence[str] = TOTAL_RAILS, clock: Clock = time.monotonic, start: bool = True) -> None:
        self.root = str(root)
        self._rail_list = find_rails(self.root)
        if not self._rail_list:
            raise DataError(f"no INA3221 rails under {self.root} (looked for ina3221/*/hwmon/hwmon*/in*_label "
                            f"and ina3221x/*/iio:device*/rail_name_*)")
        labels = [r.label for r in self._rail_list]
        if total_rail is not None:
            if total_rail not in labels:
                raise DataError(f"total_rail {total_rail!r} not among INA3221 rails {labels} under {self.root}")
            self.total_rail, self.total_mode = total_rail, "rail"
        else:
            self.total_rail, self.total_mode = pick_total(dict.fromkeys(labels), total_names)
        super().__init__(period_s=period_s, clock=clock, start=start)

    @classmethod
    def probe(cls, root: str = DEFAULT_ROOT, **_ignored) -> Tuple[bool, str]:
        rails = find_rails(str(root))
        if not rails:
            return False, f"no INA3221 rails under {root}"
        readable = [r.label for r in rails if r.read_mw() is not None]
        if not readable:
            return False, f"INA3221 rails {[r.label for r in rails]} under {root} are not readable"
        return True, f"INA3221 rails {readable} under {root}"

    def _read(self) -> Reading:
        rails: Dict[str, float] = {}
        for r in self._rail_list:
            mw = r.read_mw()
            if mw is not None:
                rails[r.label] = mw
        if self.total_rail is not None:
            return rails.get(self.total_rail), rails
        if len(rails) < len(self._rail_list):
            return None, rails  # a partial sum would undercount; skip this sample
        return (sum(rails.values()) if rails else None), rails

    def describe(self) -> dict:
        layouts = sorted({r.layout for r in self._rail_list})
        return {
            "kind": "ina3221",
            "source": self.root,
            "layout": layouts[0] if len(layouts) == 1 else layouts,
            "devices": sorted({r.device for r in self._rail_list}),
            "rails": [r.label for r in self._rail_list],
            "period_s": self.period_s,
            "total": {"rail": self.total_rail, "mode": self.total_mode},
        }

import os
import shutil
from pathlib import Path

import pytest

from dynmm_edge.errors import DataError
from dynmm_edge.power.ina3221 import Ina3221Meter, find_rails
from dynmm_edge.testing import FakeClock

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples" / "power"


def test_hwmon_orin_nano_uses_vdd_in_not_sum():
    root = SAMPLES / "ina3221_hwmon_orin_nano"
    rails = find_rails(str(root))
    assert [r.label for r in rails] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]  # 'sum of shunt voltages' skipped
    m = Ina3221Meter(root=str(root), start=False, clock=FakeClock())
    got = m.rails()
    assert got["VDD_IN"] == pytest.approx(5064 * 1008 / 1000)
    assert got["VDD_SOC"] == pytest.approx(5064 * 288 / 1000)
    assert m.power_w() == pytest.approx(5064 * 1008 / 1e6)  # VDD_IN only, sub-rails not added
    d = m.describe()
    assert d["total"] == {"rail": "VDD_IN", "mode": "rail"} and d["layout"] == "hwmon"
    m.close()


def test_hwmon_agx_orin_two_chips_no_total_rail_sums():
    root = SAMPLES / "ina3221_hwmon_agx_orin"
    m = Ina3221Meter(root=str(root), start=False, clock=FakeClock())
    labels = set(m.rails())
    assert labels == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"}  # NC channels skipped
    expect = (4992 * 1416 + 4992 * 312 + 4984 * 648 + 4992 * 80) / 1e6
    assert m.power_w() == pytest.approx(expect)
    d = m.describe()
    assert d["total"]["rail"] is None and "no total rail" in d["total"]["mode"]
    assert len(d["devices"]) == 2


def test_iio_nano_layout_power_and_voltage_current_fallback():
    root = SAMPLES / "ina3221_iio_nano"
    m = Ina3221Meter(root=str(root), start=False, clock=FakeClock())
    r = m.rails()
    assert r["POM_5V_IN"] == 2003 and r["POM_5V_GPU"] == 39
    assert r["POM_5V_CPU"] == pytest.approx(5032 * 64 / 1000)  # no in_power2_input: V * I
    assert m.power_w() == pytest.approx(2.003)
    assert m.describe()["layout"] == "iio"


def test_integration_with_fake_clock(tmp_path):
    root = tmp_path / "sys"
    shutil.copytree(SAMPLES / "ina3221_hwmon_orin_nano", root)
    curr = root / "ina3221/1-0040/hwmon/hwmon1/curr1_input"
    clk = FakeClock()
    m = Ina3221Meter(root=str(root), start=False, clock=clk)  # first sample: 5064 mV * 1008 mA
    p0 = 5064 * 1008 / 1e6
    curr.write_text("2016\n")
    clk.t = 2.0
    m.sample()
    p1 = 5064 * 2016 / 1e6
    assert m.energy_j() == pytest.approx(0.5 * (p0 + p1) * 2.0, rel=1e-6)  # sample_on_read at same t adds 0


def test_unreadable_total_rail_skips_sample_and_missing_current_drops_rail(tmp_path):
    root = tmp_path / "sys"
    shutil.copytree(SAMPLES / "ina3221_hwmon_orin_nano", root)
    dev = root / "ina3221/1-0040/hwmon/hwmon1"
    os.remove(dev / "curr3_input")  # VDD_SOC without current file: not a usable rail
    clk = FakeClock()
    m = Ina3221Meter(root=str(root), start=False, clock=clk)
    assert "VDD_SOC" not in m.describe()["rails"]
    e0 = m.energy_j()
    os.remove(dev / "in1_input")
    os.mkdir(dev / "in1_input")  # unreadable even for root
    clk.t = 1.0
    assert m.sample() is None
    assert m.read_errors >= 1
    assert m.energy_j() == e0  # nothing integrated over the gap in the total rail


def test_missing_tree_and_bad_total_rail(tmp_path):
    ok, reason = Ina3221Meter.probe(root=str(tmp_path))
    assert not ok and str(tmp_path) in reason
    with pytest.raises(DataError, match="no INA3221 rails"):
        Ina3221Meter(root=str(tmp_path), start=False)
    with pytest.raises(DataError, match="VDD_NOPE"):
        Ina3221Meter(root=str(SAMPLES / "ina3221_hwmon_orin_nano"), total_rail="VDD_NOPE", start=False)


def test_polling_thread_short_run():
    root = SAMPLES / "ina3221_hwmon_orin_nano"
    import time

    with Ina3221Meter(root=str(root), period_s=0.01) as m:
        time.sleep(0.1)
        e = m.energy_j()
        assert m.samples >= 3
    p = 5064 * 1008 / 1e6
    assert e == pytest.approx(p * 0.1, rel=0.5)

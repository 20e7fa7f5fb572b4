import shutil
from pathlib import Path

import pytest

from dynmm_edge.errors import DataError
from dynmm_edge.power.rapl import RaplMeter, counter_delta, find_domains
from dynmm_edge.testing import FakeClock

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples" / "power"
RANGE = 262143328850


def test_only_package_domains():
    doms = find_domains(str(SAMPLES / "rapl_two_packages"))
    assert [d.name for d in doms] == ["package-0", "package-1"]  # core sub-domain and psys ignored
    assert doms[0].max_range_uj == RANGE


def test_counter_delta_wrap():
    assert counter_delta(100.0, 250.0, RANGE) == 150.0
    assert counter_delta(RANGE - 1000.0, 500.0, RANGE) == 1500.0


def test_meter_sums_packages_across_a_wrap(tmp_path):
    root = tmp_path / "powercap"
    shutil.copytree(SAMPLES / "rapl_two_packages", root)
    clk = FakeClock()
    m = RaplMeter(root=str(root), clock=clk)
    # package-0 starts at 262143000000, 328850 uJ before its wrap; package-1 at 5000000
    (root / "intel-rapl:0/energy_uj").write_text("1671150\n")      # wrapped: 328850 + 1671150 = 2 J
    (root / "intel-rapl:1/energy_uj").write_text("8000000\n")      # +3 J
    (root / "intel-rapl:2/energy_uj").write_text("999000000\n")    # psys: must be ignored
    clk.t = 0.5
    assert m.energy_j() == pytest.approx(5.0)
    assert m.power_w() == pytest.approx(10.0)
    assert m.rails()["package-0"] == pytest.approx(4000.0)  # mW
    (root / "intel-rapl:1/energy_uj").write_text("9000000\n")
    clk.t = 1.0
    assert m.energy_j() == pytest.approx(6.0)
    assert m.describe()["kind"] == "rapl"
    m.close()


def test_unavailable(tmp_path):
    ok, reason = RaplMeter.probe(root=str(tmp_path))
    assert not ok and "no RAPL" in reason
    with pytest.raises(DataError, match="no RAPL package domains"):
        RaplMeter(root=str(tmp_path))

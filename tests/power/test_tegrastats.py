import stat
import sys
from pathlib import Path

import pytest

from dynmm_edge.errors import DataError
from dynmm_edge.power.tegrastats import TegrastatsMeter, parse_rails, parse_tegrastats, total_mw

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples" / "power"


def lines(name):
    return (SAMPLES / name).read_text().splitlines()


def test_jp4_nano_unitless_two_values():
    r = parse_tegrastats(lines("tegrastats_jp4_nano.txt")[1])
    assert r == {"POM_5V_IN": 4211.0, "POM_5V_GPU": 1527.0, "POM_5V_CPU": 1109.0}  # RAM/SWAP/IRAM not rails
    assert total_mw(r) == (4211.0, "POM_5V_IN", "rail")


def test_jp4_agx_xavier_short_names_sum():
    r = parse_tegrastats(lines("tegrastats_jp4_agx_xavier.txt")[0])
    assert r == {"GPU": 0.0, "CPU": 311.0, "SOC": 933.0, "CV": 0.0, "VDDRQ": 155.0, "SYS5V": 1809.0}
    tot, rail, mode = total_mw(r)
    assert tot == 311 + 933 + 155 + 1809 and rail is None and "no total rail" in mode


def test_jp6_mw_two_values():
    full = parse_rails(lines("tegrastats_jp6_orin_nano.txt")[1])
    assert full["VDD_IN"] == (9120.0, 7048.0, None)
    assert parse_tegrastats(lines("tegrastats_jp6_orin_nano.txt")[1]) == {
        "VDD_IN": 9120.0, "VDD_CPU_GPU_CV": 3730.0, "VDD_SOC": 2208.0}
    agx = parse_tegrastats(lines("tegrastats_jp6_agx_orin.txt")[0])
    assert set(agx) == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"}


def test_jp72_three_values_cur_avg_peak():
    full = parse_rails(lines("tegrastats_jp72_three_value.txt")[1])
    assert full["VDD_IN"] == (6736.0, 6010.0, 6736.0)
    assert full["VDD_SOC"] == (1720.0, 1608.0, 1720.0)
    assert parse_tegrastats(lines("tegrastats_jp72_three_value.txt")[1])["VDD_CPU_GPU_CV"] == 2488.0


def test_line_without_rails():
    assert parse_tegrastats("RAM 2448/30536MB (lfb 6227x4MB) SWAP 0/15268MB (cached 0MB)") == {}
    assert total_mw({}) == (None, None, "no rails")


def _fake_tegrastats(tmp_path, sample):
    script = tmp_path / "tegrastats"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, time\n"
        "assert sys.argv[1] == '--interval'\n"
        "dt = int(sys.argv[2]) / 1000\n"
        f"lines = open({str(SAMPLES / sample)!r}).read().splitlines()\n"
        "for i in range(200):\n"
        "    print(lines[i % len(lines)], flush=True)\n"
        "    time.sleep(dt)\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_meter_runs_fake_binary_and_integrates(tmp_path):
    binary = _fake_tegrastats(tmp_path, "tegrastats_jp72_three_value.txt")
    assert TegrastatsMeter.probe(binary=binary)[0]
    import time

    with TegrastatsMeter(binary=binary, interval_ms=20) as m:
        time.sleep(0.15)
        e = m.energy_j()
        d = m.describe()
        assert m.lines >= 3
        assert m.power_w() in (5.284, 6.736)
    assert d["total"] == {"rail": "VDD_IN", "mode": "rail"}
    assert "VDD_SOC" in d["rails"]
    assert 5.284 * 0.05 < e < 6.736 * 0.3  # between min and max power times a plausible window
    assert m._proc.poll() is not None  # subprocess stopped on close


def test_missing_binary(tmp_path):
    ok, reason = TegrastatsMeter.probe(binary=str(tmp_path / "nope"))
    assert not ok and "nope" in reason
    with pytest.raises(DataError, match="not found"):
        TegrastatsMeter(binary=str(tmp_path / "nope"))

import time

import pytest

from dynmm_edge.power import PowerMeter, TrapezoidIntegrator, measure
from dynmm_edge.testing import FakeClock, FakeMeter


def test_trapezoid_integrates_linear_ramp_exactly():
    it = TrapezoidIntegrator()
    for i in range(11):  # 0..10 W over 10 s -> 50 J
        it.add(float(i), float(i))
    assert it.energy_j == pytest.approx(50.0)
    assert it.last_power_w == 10.0 and it.samples == 11
    with pytest.raises(ValueError, match="backwards"):
        it.add(5.0, 1.0)


def test_fake_meter_scripted_with_fake_clock():
    clk = FakeClock(100.0)
    m = FakeMeter(power=[2.0, 4.0, 4.0, 0.0], clock=clk, start=False, sample_on_read=False)
    assert isinstance(m, PowerMeter)
    clk.t += 1.0
    m.sample()  # 2 -> 4 W over 1 s = 3 J
    clk.t += 0.5
    m.sample()  # 4 -> 4 W over 0.5 s = 2 J
    clk.t += 2.0
    m.sample()  # 4 -> 0 W over 2 s = 4 J
    assert m.energy_j() == pytest.approx(9.0)
    assert m.power_w() == 0.0


def test_fake_meter_thread_constant_power_and_measure_window():
    with FakeMeter(power=3.0, period_s=0.01) as m:
        with measure(m) as w:
            time.sleep(0.12)
        assert m.samples >= 3
    assert w.seconds == pytest.approx(0.12, abs=0.05)
    assert w.joules == pytest.approx(3.0 * w.seconds, rel=0.15)
    assert w.mean_power_w == pytest.approx(3.0, rel=0.15)
    assert w.per_frame(4) == pytest.approx(w.joules / 4)


def test_measure_without_meter_gives_none_not_zero():
    with measure(None) as w:
        pass
    assert w.joules is None and w.mean_power_w is None and w.per_frame(10) is None
    assert w.seconds is not None

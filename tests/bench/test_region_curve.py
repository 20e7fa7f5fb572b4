"""Region break-even arithmetic and the interleaved timing loop (shared by bench and the torch script)."""
import pytest

from dynmm_edge.bench.region import interleaved_p50, random_masks, savings_curve


def test_savings_curve_ideal_and_realized_against_full_and_rgb():
    p50 = {"full": 20.0, "rgb": 12.0, "0.3": 15.0, "1.0": 21.0}  # depth = 40 % of the frame
    r = savings_curve(p50, [0.3, 1.0], {0.3: 14, 1.0: 48}, lambda active: active / 48)
    low, high = r["curve"]
    assert r["depth_time_share"] == pytest.approx(0.4)
    assert low["ideal_saving"] == pytest.approx(0.4 * (1 - 14 / 48)) and low["realized_saving"] == pytest.approx(0.25)
    assert low["realized_over_ideal"] == pytest.approx(0.25 / (0.4 * (1 - 14 / 48)))
    assert high["realized_saving"] == pytest.approx(-0.05) and high["realized_over_ideal"] is None
    assert r["break_even_share"] == 0.3


def test_interleaved_p50_runs_every_mode_on_every_frame_and_warms_up():
    calls, clock = [], [0.0]

    def run(mode, i):
        calls.append((mode, i))
        clock[0] += {"full": 3, "rgb": 1}.get(mode, 2) / 1e3  # a fake clock: ms per mode

    p50 = interleaved_p50(run, ["full", "rgb", 0.5], frames=3, repeats=2, warmup=1, seed=0, timer=lambda: clock[0])
    assert p50 == pytest.approx({"full": 3.0, "rgb": 1.0, "0.5": 2.0})
    warm, timed = calls[:3], calls[3:]
    assert warm == [("full", 0), ("rgb", 0), (0.5, 0)] and len(timed) == 3 * 3 * 2
    assert all(sorted(str(m) for m, f in timed[k:k + 3]) == ["0.5", "full", "rgb"] for k in range(0, 18, 3))


def test_random_masks_keep_the_share_per_frame_and_are_seeded():
    a, b = random_masks(6, 8, 0.3, 4, seed=7), random_masks(6, 8, 0.3, 4, seed=7)
    assert [int(m.sum()) for m in a] == [14] * 4 and all((x == y).all() for x, y in zip(a, b))

"""The interleaved bench loop on a tiny model: schema-valid JSON, consistent counts, energy per mode."""
import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")


@pytest.fixture
def frames():
    from dynmm_edge.types import Frame
    rng = np.random.default_rng(0)
    return [Frame(i, rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
                  rng.integers(400, 6000, (48, 64)).astype(np.uint16)) for i in range(12)]


def test_bench_report_consistent(tiny_export, frames):
    from dynmm_edge.bench.report import validate
    from dynmm_edge.bench.run import mode_policies, run_bench
    from dynmm_edge.backends import make_backend
    from dynmm_edge.runtime.session import Session
    _, _, m = tiny_export
    with Session(m, make_backend("ort", threads=1)) as s:
        rep = run_bench(s, frames, modes=mode_policies([2.0]), warmup=1, block=4)
    assert validate(rep) == []
    assert set(rep["modes"]) == {"full_depth", "rgb_only", "dynamic", "dynamic_bias_2"}
    for name, mode in rep["modes"].items():
        assert mode["e2e_ms"]["n"] == 12
        assert sum(mode["path_histogram"].values()) == 12
    full, rgb = rep["modes"]["full_depth"], rep["modes"]["rgb_only"]
    assert full["path_histogram"] == {"5": 12} and rgb["path_histogram"] == {"0": 12}
    assert "gate" not in full["branches"] and "depth0" not in rgb["branches"]
    assert rep["modes"]["dynamic"]["branches"]["gate"]["calls"] == 12
    assert full["depth_macs_mean"] == m.depth_macs(5) and rgb["depth_macs_mean"] == 0
    # fixed modes do not run the gate, so their MACs exclude it
    assert full["total_macs_mean"] == m.total_macs(5) - m.branch("gate").macs
    ideal = 1 - rep["modes"]["dynamic"]["total_macs_mean"] / full["total_macs_mean"]
    assert rep["savings"]["ideal"] == pytest.approx(ideal)
    assert rep["energy"]["meter"] is None and rep["energy"]["dynamic"]["j_per_frame"] is None
    assert rep["throughput"]["pipelined_fps"] > 0


def test_bench_energy_with_meter_and_pacing(tiny_export, frames):
    from dynmm_edge.bench.run import run_bench
    from dynmm_edge.testing import FakeMeter
    from dynmm_edge.backends import make_backend
    from dynmm_edge.runtime.session import Session
    _, _, m = tiny_export
    with Session(m, make_backend("ort", threads=1)) as s, FakeMeter(power=10.0, period_s=0.005) as meter:
        rep = run_bench(s, frames[:6], warmup=1, block=3, fps=50.0, meter=meter, pipelined=False)
    for mode in ("full_depth", "rgb_only", "dynamic"):
        e = rep["energy"][mode]
        # 10 W while paced at 50 FPS: each frame owns at least its 20 ms slot -> about 0.2 J
        assert e["j_per_frame"] == pytest.approx(0.2, rel=0.35)
        assert e["mean_power_w"] == pytest.approx(10.0, rel=0.2)
    assert rep["fps_pacing"] == 50.0


def test_bench_cli_json_and_compare(tmp_path, tiny_export, capsys):
    from dynmm_edge.apps.cli import main
    _, _, m = tiny_export
    a = tmp_path / "a.json"
    assert main(["bench", str(m.folder), "--source", "synthetic://?frames=6&width=64&height=48", "--warmup", "1",
                 "--block", "3", "--power", "none", "--json", str(a), "--threads", "1"]) == 0
    rep = json.loads(a.read_text())
    assert rep["schema"] == "dynmm-edge/bench" and rep["frames"] == 6
    assert rep["input"]["source"] == "synthetic://?frames=6&width=64&height=48" and rep["input"]["seed"] == 0
    assert rep["input"]["frames"] == 6 and rep["input"]["command"].startswith(f"dynmm-edge bench {m.folder} --source")
    assert (tmp_path / "a.md").is_file() and (tmp_path / "a.png").is_file()
    capsys.readouterr()
    assert main(["bench", "--compare", str(a), str(a)]) == 0
    assert "full_depth" in capsys.readouterr().out
    b = tmp_path / "b.json"
    assert main(["bench", str(m.folder), "--frames", "4", "--warmup", "1", "--block", "2", "--power", "none",
                 "--json", str(b), "--no-plot", "--threads", "1"]) == 0
    assert "no --source given: measuring on the synthetic source synthetic://?frames=200" in capsys.readouterr().out
    rep = json.loads(b.read_text())["input"]
    assert rep["source_defaulted"] is True and rep["seed"] == 99 and rep["frames"] == 4

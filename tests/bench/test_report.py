import json

import numpy as np
import pytest

from dynmm_edge import _lazy
from dynmm_edge.bench import report as R
from dynmm_edge.errors import DataError

ENV = {"python": "3.11", "packages": {}, "cpu_model": "Test CPU", "cpu_cores": 2, "gpu_name": None,
       "jetson_model": "NVIDIA Jetson Orin Nano Developer Kit", "nvpmodel": {"name": "15W", "id": 0, "raw": ""},
       "jetson_clocks": None, "os": None}
INCLUDED = {"preprocess": False, "transfers": True, "argmax": True,
            "text": "H2D copy, gate, depth branches, trunk, argmax, D2H labels"}


def _modes(keep_samples=True):
    rng = np.random.default_rng(1)
    full = rng.normal(20.0, 1.0, 40).clip(15)
    rgb = rng.normal(12.0, 0.5, 40).clip(9)
    dyn = np.concatenate([full[:10] + 0.6, rgb[:30] + 0.6])
    modes = {
        "full_depth": R.mode_entry(full, {"depth_0": [1.0] * 40, "depth_1": [2.0] * 40, "trunk": [9.0] * 40},
                                   {5: 40}, 20e9, 60e9, keep_samples),
        "rgb_only": R.mode_entry(rgb, {"trunk": [9.0] * 40}, {0: 40}, 0.0, 40e9, keep_samples),
        "dynamic": R.mode_entry(dyn, {"gate": [0.5] * 40, "depth_0": [1.0] * 10, "depth_1": [2.0] * 10,
                                      "trunk": [9.0] * 40}, {0: 30, 5: 10}, 5e9, 45.12e9, keep_samples),
    }
    return modes


def _report(energy=None, keep_samples=True):
    return R.make_report(model={"name": "demo-r18"}, backend="ort-cpu", precision="fp32", included=INCLUDED,
                         frames=40, warmup=5, modes=_modes(keep_samples), environment=ENV,
                         throughput={"serial_fps": 55.0, "pipelined_fps": 80.0}, energy=energy, dispatch_ms=0.1)


def _energy():
    return {"meter": {"kind": "ina3221", "source": "/sys/bus/i2c/drivers", "rails": ["VDD_IN"], "period_s": 0.05,
                      "total": {"rail": "VDD_IN", "mode": "rail"}}, "note": "",
            "full_depth": R.energy_entry(4.0, 40, 0.8), "rgb_only": R.energy_entry(2.0, 40, 0.5),
            "dynamic": R.energy_entry(2.6, 40, 0.6)}


def test_make_report_valid_and_derived_numbers():
    rep = _report()
    assert R.validate(rep) == []
    m = rep["modes"]
    assert rep["savings"]["ideal"] == pytest.approx(1 - 45.12 / 60)
    realized = 1 - m["dynamic"]["e2e_ms"]["mean"] / m["full_depth"]["e2e_ms"]["mean"]
    assert rep["savings"]["realized"] == pytest.approx(realized)
    assert rep["savings"]["ratio"] == pytest.approx(realized / (1 - 45.12 / 60))
    assert rep["overhead"]["gate_ms"] == pytest.approx(0.5)
    assert rep["overhead"]["gate_share"] == pytest.approx(0.6 / m["full_depth"]["e2e_ms"]["mean"])
    assert rep["energy"]["meter"] is None and rep["energy"]["note"] == R.NO_METER
    assert rep["energy"]["dynamic"] == {"j_per_frame": None, "mean_power_w": None}
    assert R.energy_entry(2.6, 40, 0.6) == {"j_per_frame": pytest.approx(0.065), "mean_power_w": pytest.approx(2.6 / 0.6)}


def test_validate_catches_problems():
    rep = _report()
    rep["schema_version"] = 2
    rep["modes"]["dynamic"]["path_histogram"] = {"0": 1}
    rep["modes"]["weird"] = rep["modes"]["rgb_only"]
    rep["energy"]["rgb_only"] = {"j_per_frame": 0.0, "mean_power_w": 0.0}  # zeros without a meter
    rep["included"]["argmax"] = "yes"
    st = rep["modes"]["full_depth"]["e2e_ms"]
    st["p50"], st["p99"] = st["p99"], st["p50"]
    probs = "\n".join(R.validate(rep))
    for needle in ("schema_version", "path_histogram: counts sum to 1", "modes.weird: unknown mode",
                   "energy.rgb_only: values present but energy.meter is null", "included.argmax",
                   "modes.full_depth.e2e_ms: percentiles not ordered"):
        assert needle in probs
    assert R.validate([]) and "missing top-level keys" in R.validate({})[0]


def test_markdown_contains_numbers_and_no_meter():
    rep = _report()
    md = R.to_markdown(rep)
    fd = rep["modes"]["full_depth"]["e2e_ms"]
    assert f"{fd['p50']:.2f}" in md and f"{fd['p99']:.2f}" in md
    assert "No power meter" in md
    assert "Jetson Orin Nano" in md and "nvpmodel 15W" in md
    assert INCLUDED["text"] in md and "preprocess no" in md
    assert f"{100 * rep['savings']['ideal']:.1f}%" in md
    assert "| gate | - | - | 0.50 (40) |" in md  # per-branch p50 (calls), '-' where a mode has no such branch
    assert "0: 30, 5: 10" in md
    md2 = R.to_markdown(_report(energy=_energy()))
    assert "No power meter" not in md2 and "ina3221" in md2 and "| dynamic | 0.0650 | 65.0 | 4.33 |" in md2


def test_compare_ratios_and_deltas():
    a = _report()
    b = json.loads(json.dumps(a))
    b["modes"]["dynamic"]["e2e_ms"]["p50"] = a["modes"]["dynamic"]["e2e_ms"]["p50"] / 2
    b["energy"] = _energy()
    b["backend"] = "trt"
    out = R.compare(a, b)
    assert "B: trt/fp32" in out
    row = next(line for line in out.splitlines() if line.startswith("| dynamic e2e p50 ms"))
    assert "0.500x" in row and f"{-a['modes']['dynamic']['e2e_ms']['p50'] / 2:+.3f}" in row
    assert "| dynamic J/frame | n/a | 0.0650 | n/a | n/a |" in out
    assert "A has no power meter" in out
    assert "| savings ideal |" in out and "1.000x" in out


def test_write_report_json_md_png(tmp_path):
    rep = _report(energy=_energy())
    paths = R.write_report(rep, tmp_path / "bench" / "run1.json")
    loaded = R.load_report(paths["json"])
    assert loaded["modes"]["dynamic"]["path_histogram"] == {"0": 30, "5": 10}
    assert paths["md"].read_text() == R.to_markdown(loaded)
    if _lazy.available("matplotlib"):
        assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "bench").iterdir()) == sorted(
        ["run1.json", "run1.md"] + (["run1.png"] if paths["png"] else []))  # no temp files left


def test_plot_without_samples_and_without_meter(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed")
    out = R.plot(_report(keep_samples=False), tmp_path / "p.png")
    assert out.stat().st_size > 1000


def test_write_report_refuses_invalid(tmp_path):
    rep = _report()
    del rep["savings"]
    with pytest.raises(DataError, match="run2.json is invalid.*savings"):
        R.write_report(rep, tmp_path / "run2.json")
    assert not list(tmp_path.iterdir())
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(DataError, match="bad.json is not a valid"):
        R.load_report(bad)


def test_environment_never_fails_and_parses_jetson_tools():
    from dynmm_edge.bench import env

    e = env.environment()
    assert e["python"] and e["cpu_cores"] >= 1 and "numpy" in e["packages"]
    json.dumps(e)  # serialisable
    out = "NV Power Mode: MAXN\n0\n"
    assert env.nvpmodel_mode(run=lambda cmd: out) == {"name": "MAXN", "id": 0, "raw": out}
    assert env.nvpmodel_mode(run=lambda cmd: None) is None

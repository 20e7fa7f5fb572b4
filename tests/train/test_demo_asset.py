"""The shipped demo checkpoint: loadable, small, provenance recorded, and its recorded eval meets the targets."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASSET = ROOT / "dynmm_edge" / "assets" / "demo_model" / "model.pt"
EVAL = ROOT / "docs" / "results" / "demo_eval.json"


@pytest.mark.skipif(not ASSET.exists(), reason="demo asset not built (scripts/train_demo.sh)")
def test_demo_checkpoint_loads_with_provenance():
    pytest.importorskip("torch")
    from dynmm_edge.model.checkpoints import load_model
    from dynmm_edge.model.presets import get_preset

    # 6.3 M parameters stored as float16. Width 0.25 would be 3.3 MB, but there per-op overhead made
    # ONNX Runtime CPU time track MACs badly (56 % of the ideal saving realised; 90 % at width 0.5).
    # The region head (docs/REGIONS.md: region trunk + tile stage copies + gate) doubles it to 12.5 M.
    assert ASSET.stat().st_size < 30_000_000
    model, meta = load_model(ASSET)
    assert model.config == get_preset("demo").replace(region_tile=32, region_gate_cues=True)
    assert len(meta["classes"]) == model.config.num_classes
    train = meta["train"]
    assert train["seed"] == 0 and "dynmm-edge train" in train["command"] and "--gate-cues" in train["command"]
    assert model.config.gate_cues  # the cue gate (model/gate.py CueGate)
    # a gate-only retrofit: the trunk's own training (stage I/II, then gate) is the recorded ancestry
    assert "dynmm-edge train --init-from" in train["parent"]["command"]
    assert "dynmm-edge train --preset demo" in train["parent"]["parent"]["command"]


@pytest.mark.skipif(not EVAL.exists(), reason="demo eval not run (scripts/train_demo.sh)")
def test_recorded_demo_eval_meets_targets():
    """Measured on held-out world-2 sets (seed 4242): the gate lies above the static front (time-sharing
    included) at its own cost and really switches paths; full depth still matters on camouflage."""
    rep = json.loads(EVAL.read_text())
    assert "seed=4242" in rep["data"] and "world=2" in rep["data"]  # held-out seed, not a training seed
    dyn, cam = rep["modes"]["dynamic"], rep["by_kind"]["camouflaged"]
    assert dyn["front_delta"] >= 0.040           # measured +4.01 mIoU points above the front
    assert dyn["front_miou"] >= max(s["miou"] for s in rep["static"].values()
                                    if s["depth_macs_fraction"] <= dyn["depth_macs_fraction"])
    n = rep["frames"]
    assert sum(c >= 0.1 * n for c in dyn["path_histogram"].values()) >= 3
    assert cam["full_depth"]["miou"] - cam["rgb_only"]["miou"] >= 0.05


@pytest.mark.skipif(not (EVAL.parent / "demo_eval_hf06.json").exists(), reason="demo eval not run")
def test_recorded_cost_follows_difficulty():
    lo = json.loads((EVAL.parent / "demo_eval_hf01.json").read_text())
    hi = json.loads((EVAL.parent / "demo_eval_hf06.json").read_text())
    assert "hard_fraction=0.1" in lo["data"] and "hard_fraction=0.6" in hi["data"]
    ratio = hi["modes"]["dynamic"]["depth_macs_mean"] / lo["modes"]["dynamic"]["depth_macs_mean"]
    assert ratio >= 1.8  # measured 1.81 (the issue asks for 1.5)
    for rep in (lo, hi):
        assert rep["modes"]["dynamic"]["miou"] >= rep["modes"]["full_depth"]["miou"] - 0.01


@pytest.mark.parametrize("name", ["demo_eval_hf01.json", "demo_eval.json", "demo_eval_hf06.json"])
def test_recorded_region_mode_meets_the_bar(name):
    """Issue 11 on three held-out world-2 sets: the learned region gate at threshold 0.5 within 0.5 points of
    full depth at <= 50 % of its depth MACs, and >= 2 points above the static front, where the front is the
    hull of every dense path AND region execution with no / every tile (the region trunk's fine-tuning
    alone cannot pass for gating)."""
    path = EVAL.parent / name
    if not path.exists():
        pytest.skip(f"{name} not recorded (scripts/train_demo.sh)")
    rep = json.loads(path.read_text())
    region, full = rep["modes"]["region"], rep["modes"]["full_depth"]
    assert region["policy"] == "gate:0.5" and "seed=4242" in rep["data"]
    assert region["depth_macs_fraction"] <= 0.5
    assert region["miou"] >= full["miou"] - 0.005
    assert region["front_delta"] >= 0.02
    fixed = list(rep["static"].values()) + list(rep["region_static"].values())
    assert region["front_miou"] >= max(f["miou"] for f in fixed if f["depth_macs_fraction"] <= region["depth_macs_fraction"])

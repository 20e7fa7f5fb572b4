"""Training loop on the tiny preset: stages run, metrics logged, exact resume, retrofit, final checkpoint."""
import json
import math

import pytest

torch = pytest.importorskip("torch")

from dynmm_edge.train.loop import TrainConfig, load_state, train

DATA = "synthetic://?frames=6&hard_fraction=0.5&seed=11"


def _cfg(out, **kw):
    base = dict(preset="tiny-test", data=DATA, out=str(out), epochs_stage1=1, epochs_stage2=1, epochs_gate=0,
                batch_size=2, lr=3e-3, threads=1, progress=False, seed=4)
    base.update(kw)
    return TrainConfig(**base)


def test_stages_run_metrics_and_final_checkpoint(tmp_path):
    from dynmm_edge.model.checkpoints import load_model

    res = train(_cfg(tmp_path / "run", epochs_gate=1, val_data="synthetic://?frames=3&seed=99", command="unit"))
    epochs = [h for h in res["history"] if h["type"] == "epoch"]
    assert [h["stage"] for h in epochs] == ["stage1", "stage2", "gate"]
    for h in epochs:
        assert math.isfinite(h["loss"]) and h["loss"] >= 0
        assert sum(h["path_histogram"].values()) == 6  # every frame once per epoch
    assert epochs[1]["temperature"] == pytest.approx(1e-3)  # annealed to the end in stage II
    assert epochs[1]["expected_depth_cost"] is not None and 0 <= epochs[1]["expected_depth_cost"] <= 1
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["type"] for x in lines] == ["epoch", "eval", "epoch", "eval", "epoch", "eval"]
    assert 0.0 <= lines[1]["modes"]["full_depth"]["miou"] <= 1.0
    model, meta = load_model(res["final"])
    assert model.config.height == 64 and len(meta["classes"]) == 8
    assert meta["train"]["seed"] == 4 and meta["train"]["command"] == "unit"
    from dynmm_edge.data import synthetic
    assert meta["preprocess"]["depth_mean"] == pytest.approx(synthetic.DEPTH_MEAN_MM)
    assert meta["preprocess"]["depth_std"] == pytest.approx(synthetic.DEPTH_STD_MM)


def test_loss_decreases_when_overfitting(tmp_path):
    res = train(_cfg(tmp_path / "fit", data="synthetic://?frames=4&seed=2", epochs_stage1=6, epochs_stage2=0,
                     augment=False, lr=1e-2, batch_size=4))
    losses = [h["loss"] for h in res["history"]]
    assert all(math.isfinite(v) for v in losses)
    assert min(losses[-2:]) < losses[0]


def test_resume_continues_exactly(tmp_path):
    full = train(_cfg(tmp_path / "a"))
    first = train(_cfg(tmp_path / "b", stop_after=1))
    assert first["final"] is None and first["epochs_done"] == 1
    st1 = load_state(tmp_path / "b" / "state.pt")
    assert st1["epochs_done"] == 1 and st1["optimizer_kind"] == "joint"
    resumed = train(_cfg(tmp_path / "b", resume=True))
    assert resumed["epochs_done"] == 2
    sa, sb = full["model"].state_dict(), resumed["model"].state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    oa = load_state(tmp_path / "a" / "state.pt")["optimizer"]
    ob = load_state(tmp_path / "b" / "state.pt")["optimizer"]
    assert oa["param_groups"] == ob["param_groups"]
    for k in oa["state"]:
        for name, v in oa["state"][k].items():
            assert torch.equal(v, ob["state"][k][name]), (k, name)
    hist = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [1, 2]
    from dynmm_edge.errors import CheckpointError
    with pytest.raises(CheckpointError, match="seed"):
        train(_cfg(tmp_path / "b", resume=True, seed=5))


def test_gate_only_retrofit_from_checkpoint_keeps_trunk(tmp_path):
    from dynmm_edge.model.checkpoints import load_model, save_checkpoint

    torch.manual_seed(0)
    net, meta = load_model("tiny-test")
    src = tmp_path / "static.pt"
    save_checkpoint(src, net, meta)
    res = train(_cfg(tmp_path / "g", init_from=str(src), epochs_stage1=0, epochs_stage2=0, epochs_gate=2,
                     budget=0.2, resource_lambda=5.0))
    after = res["model"].state_dict()
    before = net.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all(k.startswith("gate.") for k in changed)


def test_bad_config_rejected():
    with pytest.raises(ValueError, match="budget"):
        TrainConfig(budget=1.5)
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")


def test_pack_checkpoint_half_size_same_predictions(tmp_path):
    from dynmm_edge.model.checkpoints import load_model, save_checkpoint
    from dynmm_edge.train.loop import pack_checkpoint

    torch.manual_seed(0)
    net, meta = load_model("tiny-test")
    save_checkpoint(tmp_path / "f32.pt", net, meta)
    pack_checkpoint(tmp_path / "f32.pt", tmp_path / "f16.pt")
    assert (tmp_path / "f16.pt").stat().st_size < 0.7 * (tmp_path / "f32.pt").stat().st_size
    m16, meta16 = load_model(tmp_path / "f16.pt")
    assert next(m16.parameters()).dtype == torch.float32 and meta16["classes"] == meta["classes"]
    x = torch.randn(1, 3, 64, 64), torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        a, b = net.eval()(*x, path=5), m16(*x, path=5)
    assert torch.allclose(a, b, atol=5e-2)


def test_frame_losses_class_mean_vs_pixel_mean():
    from dynmm_edge.train.loop import frame_losses

    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 0] = 5.0  # predicts class 0 everywhere
    labels = torch.tensor([[[0, 0], [0, 1]]])
    good = math.log(1 + 2 * math.exp(-5.0))
    bad = good + 5.0
    assert float(frame_losses(logits, labels, None, "pixel_mean")) == pytest.approx((3 * good + bad) / 4, rel=1e-4)
    assert float(frame_losses(logits, labels, None, "class_mean")) == pytest.approx((good + bad) / 2, rel=1e-4)
    labels_void = torch.full((1, 2, 2), 255)
    assert float(frame_losses(logits, labels_void, None, "class_mean")) == 0.0

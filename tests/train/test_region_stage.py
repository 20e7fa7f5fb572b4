"""Region stage: trains only the region head (dense model bit-identical), CLI errors, eval report keys."""
import subprocess
import sys

import pytest
import torch

from dynmm_edge.model.checkpoints import load_model
from dynmm_edge.train.region import RegionTrainConfig, train_region, training_masks
from dynmm_edge.train.evaluate import front_miou, front_points

DATA = "synthetic://?frames=8&hard_fraction=0.5&seed=3"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("region_stage")
    cfg = RegionTrainConfig(init_from="tiny-test", out=str(out), data=DATA, epochs=1, batch_size=4, gate_epochs=3,
                            gate_batch_size=4, threads=1)
    return train_region(cfg), out


def test_stage_trains_only_the_region_head(trained):
    result, out = trained
    assert result["steps"] == 2 + 3 * 2  # tile stages: 1 epoch x 2 batches; gate: 3 epochs x 2 batches
    net, meta = load_model(result["final"])
    assert net.config.region_tile == 32 and net.region is not None and net.config.region_gate_cues
    assert meta["train"]["region"]["epochs"] == 1
    assert meta["train"]["region"]["derived_price"] == pytest.approx(result["price"])
    # the gate trained in training mode: its BatchNorm statistics left their initial values
    assert not torch.equal(net.region.gate.body[0].bn.running_mean, torch.zeros_like(net.region.gate.body[0].bn.running_mean))
    sd = net.state_dict()
    # the tile stages started as copies of the dense stages and moved; the dense stages did not
    moved = any(not torch.equal(sd[f"region.layers.0.{k}"], sd[f"encoder_depth.layer1.{k}"])
                for k in ("0.conv1.weight", "0.conv2.weight", "1.conv1.weight"))
    assert moved


def test_dense_weights_are_bit_identical_to_the_init(tmp_path):
    torch.manual_seed(0)
    from dynmm_edge.model.checkpoints import default_meta, save_checkpoint
    from dynmm_edge.model.net import DynMMNet
    from dynmm_edge.model.presets import get_preset
    net = DynMMNet(get_preset("tiny-test")).eval()
    save_checkpoint(tmp_path / "init.pt", net, default_meta("tiny-test"))
    r = train_region(RegionTrainConfig(init_from=str(tmp_path / "init.pt"), out=str(tmp_path / "o"), data=DATA,
                                       epochs=1, batch_size=8, threads=1))
    after, _ = load_model(r["final"])
    sd = after.state_dict()
    for k, v in net.state_dict().items():
        assert torch.equal(sd[k], v), k


def test_price_is_the_gain_quantile_that_the_keep_share_exceeds():
    from dynmm_edge.train.region import price_for
    gains = torch.arange(100, dtype=torch.float32).reshape(4, 5, 5) / 100
    cfg = RegionTrainConfig(init_from="x", out="o", keep=0.3)
    price = price_for(gains, cfg)
    assert float((gains > price).float().mean()) == pytest.approx(0.3)
    assert price_for(gains, RegionTrainConfig(init_from="x", out="o", price=0.5)) == 0.5
    with pytest.raises(ValueError, match="keep share"):
        RegionTrainConfig(init_from="x", out="o", keep=1.0)


def test_training_masks_follow_the_per_frame_share():
    gain = torch.arange(2 * 4 * 8, dtype=torch.float32).reshape(2, 4, 8)
    cfg = RegionTrainConfig(init_from="x", out="o", share_min=0.25, share_max=0.25, random_tiles=0.0)
    m = training_masks(gain, cfg, torch.Generator().manual_seed(0))
    assert m.sum(dim=(1, 2)).tolist() == [8.0, 8.0]
    assert m[0].reshape(-1)[-8:].sum() == 8  # the largest gains


def test_front_interpolates_time_sharing_between_paths():
    pts = [(0.0, 0.6), (0.3, 0.8), (1.0, 0.84)]
    hull = front_points([c for c, _ in pts], [m for _, m in pts])
    assert front_miou(hull, 0.15) == pytest.approx(0.7)
    assert front_miou(hull, 0.3) == pytest.approx(0.8)
    assert front_miou(hull, 2.0) == pytest.approx(0.84)


def test_cli_region_stage_needs_init_from(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dynmm_edge.apps.cli", "train", "--stage", "region",
                        "-o", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["dynmm-edge train: error: --stage region needs --init-from CKPT "
                                             "(a trained dynmm-edge checkpoint or 'demo')"]


def test_eval_writes_region_mode_and_every_static_path(trained, tmp_path):
    import json
    result, _ = trained
    out = tmp_path / "eval.json"
    r = subprocess.run([sys.executable, "-m", "dynmm_edge.apps.cli", "eval", result["final"], "--source",
                        "synthetic://?frames=4&hard_fraction=0.5&seed=9", "--json", str(out), "--threads", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    region = rep["modes"]["region"]
    assert set(region) >= {"miou", "depth_macs_mean", "active_tile_share", "front_miou", "front_delta", "policy"}
    assert 0.0 <= region["active_tile_share"] <= 1.0
    assert sorted(rep["static"]) == ["0", "1", "2", "3", "4", "5"]
    assert rep["static"]["5"]["depth_macs_mean"] == rep["region_costs"]["full_depth_macs"]
    assert "entropy:0.3" in rep["region_policies"] and "region " in r.stdout
    # region execution's own fixed choices: no tile (the depth stem only) and every tile, no gate MACs
    none, every = rep["region_static"]["none"], rep["region_static"]["all"]
    assert none["active_tile_share"] == 0.0 and every["active_tile_share"] == 1.0
    assert none["depth_macs_mean"] == rep["region_costs"]["dense_macs"]
    assert "share:0" not in rep["region_policies"] and "share:1" not in rep["region_policies"]
    # the front region policies are judged against is the hull of the dense paths AND region none/all
    fixed = list(rep["static"].values()) + [none, every]
    hull = front_points([v["depth_macs_fraction"] for v in fixed], [v["miou"] for v in fixed])
    assert rep["static_front"] == [list(pt) for pt in hull]
    assert region["front_miou"] == pytest.approx(front_miou(hull, region["depth_macs_fraction"]))
    # region mode per kind of frame: every kind present, frame-weighted costs average to the overall cost
    kinds = rep["by_kind"]
    assert all("region" in k for k in kinds.values())
    mean = sum(k["frames"] * k["region"]["depth_macs_fraction"] for k in kinds.values()) / rep["frames"]
    assert mean == pytest.approx(region["depth_macs_fraction"])


def test_graft_region_composes_with_a_gate_retrofit_and_refuses_other_changes(trained, tmp_path):
    """A region head moves onto a checkpoint whose only difference is its gate; dense changes are refused."""
    from dynmm_edge.errors import CheckpointError
    from dynmm_edge.model.checkpoints import default_meta, save_checkpoint
    from dynmm_edge.train.region import graft_region
    result, _ = trained
    donor, _ = load_model(result["final"])
    dense, _ = load_model("tiny-test")
    dense.load_state_dict({k: v for k, v in donor.state_dict().items() if not k.startswith("region.")})
    with torch.no_grad():
        for p in dense.gate.parameters():
            p.add_(0.5)  # a retrained frame gate
    save_checkpoint(tmp_path / "gate.pt", dense, default_meta("tiny-test"))
    out, _ = load_model(str(graft_region(tmp_path / "gate.pt", result["final"], tmp_path / "both.pt")))
    sd, gate_sd, donor_sd = out.state_dict(), dense.state_dict(), donor.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in gate_sd.items())
    assert all(torch.equal(sd[k], v) for k, v in donor_sd.items() if k.startswith("region."))
    assert any(not torch.equal(sd[k], donor_sd[k]) for k in gate_sd if k.startswith("gate."))
    with torch.no_grad():
        next(dense.encoder_rgb.parameters()).add_(1e-3)
    save_checkpoint(tmp_path / "other.pt", dense, default_meta("tiny-test"))
    with pytest.raises(CheckpointError, match="differ outside gate"):
        graft_region(tmp_path / "other.pt", result["final"], tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="no region head"):
        graft_region(tmp_path / "gate.pt", tmp_path / "gate.pt", tmp_path / "bad.pt")

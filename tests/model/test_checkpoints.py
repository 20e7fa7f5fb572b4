import json
import argparse

import pytest
import torch

from dynmm_edge.errors import CheckpointError
from dynmm_edge.model import get_preset
from dynmm_edge.model.checkpoints import FORMAT, default_meta, load_checkpoint, load_model, save_checkpoint
from dynmm_edge.model.net import DynMMNet


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = DynMMNet(get_preset("tiny-test")).eval()
    meta = default_meta("tiny-test")
    meta["train"] = {"epochs": 3, "miou": 0.5}
    path = save_checkpoint(tmp_path / "m.pt", model, meta)
    return path, model, meta


def _rewrite(path, **changes):
    payload = torch.load(path, weights_only=True)
    payload.update(changes)
    torch.save(payload, path)
    return payload


def test_round_trip_same_outputs_and_meta(saved):
    path, model, meta = saved
    loaded, got = load_checkpoint(path)
    assert not loaded.training and loaded.config == model.config
    assert got["classes"] == meta["classes"] and got["palette"] == meta["palette"]
    assert got["preprocess"]["depth_mean"] == meta["preprocess"]["depth_mean"] and got["train"]["epochs"] == 3
    x = model.example_inputs(1)
    with torch.no_grad():
        assert torch.equal(model(x["rgb"] + 0.5, x["depth"], path=5), loaded(x["rgb"] + 0.5, x["depth"], path=5))
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["version"] == 1
    assert not list(path.parent.glob(".m.pt.*"))  # no temp file left behind
    model2, meta2 = load_model(path)
    assert meta2["config"] == model.config.to_dict()


def test_bad_format_and_version(saved):
    path = saved[0]
    _rewrite(path, format="something-else")
    with pytest.raises(CheckpointError, match="something-else"):
        load_checkpoint(path)
    _rewrite(path, format=FORMAT, version=7)
    with pytest.raises(CheckpointError, match="version 7"):
        load_checkpoint(path)


def test_missing_and_unexpected_keys_named(saved):
    path = saved[0]
    payload = torch.load(path, weights_only=True)
    sd = payload["state_dict"]
    del sd["decoder.conv_out.weight"]
    sd["extra.weight"] = torch.zeros(1)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="decoder.conv_out.weight") as info:
        load_checkpoint(path)
    assert "extra.weight" in str(info.value) and str(path) in str(info.value)


def test_shape_mismatch_named(saved):
    path = saved[0]
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["se_layer1.se_depth.fc.0.weight"] = torch.zeros(3, 3, 1, 1)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"shape mismatch for se_layer1\.se_depth\.fc\.0\.weight"):
        load_checkpoint(path)


def test_wrong_class_count(saved, tmp_path):
    path, model, meta = saved
    _rewrite(path, classes=["a", "b"])
    with pytest.raises(CheckpointError, match="num_classes=8"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="classes"):
        save_checkpoint(tmp_path / "bad.pt", model, {**meta, "classes": ["only-one"]})
    assert not (tmp_path / "bad.pt").exists()


def test_bad_config_field_named(saved):
    path = saved[0]
    payload = torch.load(path, weights_only=True)
    payload["config"]["skip_mode"] = "sometimes"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="skip_mode"):
        load_checkpoint(path)


def test_garbage_and_missing_files(tmp_path):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")
    with pytest.raises(CheckpointError, match="tiny-test"):
        load_model("no-such-preset-or-file")


def test_load_model_preset_meta():
    model, meta = load_model("tiny-test")
    assert not model.training and model.config == get_preset("tiny-test")
    assert meta["classes"][:3] == ["floor", "wall", "ceiling"] and len(meta["palette"]) == 8
    _, nyu = load_model("esanet-r34-nbt1d-nyuv2")
    assert nyu["preprocess"]["depth_mean"] == 2841.95 and nyu["preprocess"]["depth_std"] == 1417.26
    assert len(nyu["classes"]) == 40 and len({tuple(c) for c in nyu["palette"]}) == 40


def test_info_json_keys(capsys, saved):
    from dynmm_edge.apps import info_cmd
    parser = argparse.ArgumentParser()
    info_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["info", str(saved[0]), "--json", "--size", "128x96"])
    assert args.func(args) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"config", "classes", "branches", "paths", "total_params", "height", "width"} <= set(info)
    assert (info["height"], info["width"]) == (96, 128)
    assert set(info["branches"]) == {"gate", "depth0", "depth1", "depth2", "depth3", "depth4", "trunk"}
    assert set(info["paths"]) == {"0", "1", "2", "3", "4", "5"}
    assert info["paths"]["0"]["depth_macs"] == 0 < info["paths"]["5"]["depth_macs"]
    args = parser.parse_args(["info", "tiny-test"])
    assert args.func(args) == 0
    assert "depth4" in capsys.readouterr().out
    from dynmm_edge.apps.cli import main
    assert main(["info", "no-such-model"]) == 1
    assert "dynmm-edge info: error: no-such-model" in capsys.readouterr().err
    assert main(["info", "tiny-test", "--height", "96", "--width", "128"]) == 0  # deprecated spelling
    cap = capsys.readouterr()
    assert "--height is deprecated, use --size WxH" in cap.err and "input 128x96 (WxH)" in cap.out


def test_load_model_demo_and_model_folder_mean_the_trained_checkpoint():
    from dynmm_edge.paths import DEMO_MODEL as SHIPPED_DEMO
    if not (SHIPPED_DEMO / "manifest.json").is_file():
        pytest.skip("demo model not shipped")
    demo, meta = load_model("demo")
    folder, _ = load_model(SHIPPED_DEMO)
    ref, _ = load_checkpoint(SHIPPED_DEMO / "model.pt")
    for a, b, c in zip(demo.state_dict().values(), folder.state_dict().values(), ref.state_dict().values()):
        assert torch.equal(a, c) and torch.equal(b, c)
    assert meta["train"]["seed"] == 0  # trained, not the random-weight preset

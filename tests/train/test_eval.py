"""`dynmm-edge eval`: JSON keys and value ranges, static modes, bias sweep extremes, PNG."""
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

DATA = "synthetic://?frames=6&hard_fraction=0.6&seed=21"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from dynmm_edge.model.checkpoints import load_model, save_checkpoint

    torch.manual_seed(1)
    net, meta = load_model("tiny-test")
    path = tmp_path_factory.mktemp("ev") / "tiny.pt"
    save_checkpoint(path, net, meta)
    return path


def test_eval_cli_report(ckpt, tmp_path):
    from dynmm_edge.apps.cli import main

    out = tmp_path / "r.json"
    rc = main(["eval", str(ckpt), "--source", DATA, "--json", str(out), "--sweep=-50,0,50", "--threads", "1"])
    assert rc == 0
    rep = json.loads(out.read_text())
    assert rep["frames"] == 6
    assert set(rep["modes"]) == {"dynamic", "rgb_only", "full_depth"}
    for mode, m in rep["modes"].items():
        assert set(m) >= {"miou", "pixel_acc", "depth_macs_mean", "depth_macs_fraction", "per_class_iou"}
        assert 0.0 <= m["miou"] <= 1.0 and 0.0 <= m["pixel_acc"] <= 1.0
        assert len(m["per_class_iou"]) == 8
        assert all(v is None or 0.0 <= v <= 1.0 for v in m["per_class_iou"].values())
    assert rep["modes"]["rgb_only"]["depth_macs_mean"] == 0.0
    assert rep["modes"]["full_depth"]["depth_macs_fraction"] == pytest.approx(1.0)
    assert rep["modes"]["full_depth"]["depth_macs_mean"] == max(rep["depth_macs_per_path"])
    hist = rep["modes"]["dynamic"]["path_histogram"]
    assert set(hist) == {str(p) for p in rep["paths"]} and sum(hist.values()) == 6
    assert set(rep["by_kind"]) <= {"easy", "camouflaged", "dark"}
    assert sum(v["frames"] for v in rep["by_kind"].values()) == 6
    for kind in rep["by_kind"].values():
        for mode in ("dynamic", "rgb_only", "full_depth"):
            assert 0.0 <= kind[mode]["miou"] <= 1.0
    sweep = {s["bias"]: s for s in rep["sweep"]}
    assert sweep[-50.0]["depth_macs_fraction"] == 0.0            # everything on the cheapest path
    assert sweep[50.0]["depth_macs_fraction"] == pytest.approx(1.0)  # everything on full depth
    assert sweep[-50.0]["miou"] == pytest.approx(rep["modes"]["rgb_only"]["miou"])
    assert sweep[50.0]["miou"] == pytest.approx(rep["modes"]["full_depth"]["miou"])
    assert sweep[0.0]["miou"] == pytest.approx(rep["modes"]["dynamic"]["miou"])
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dynamic_equals_blend_of_static_paths(ckpt):
    """True skipping in eval: each frame's dynamic prediction equals the static run of its chosen path."""
    from dynmm_edge.data.preprocess import PreprocessConfig
    from dynmm_edge.model.checkpoints import load_model
    from dynmm_edge.train.data import open_dataset
    from dynmm_edge.train.evaluate import _predict_paths, gate_logits_for

    model, meta = load_model(str(ckpt))
    ds = open_dataset(DATA, PreprocessConfig.from_dict(meta["preprocess"]))
    rgb = torch.stack([ds[i]["rgb"] for i in range(4)])
    depth = torch.stack([ds[i]["depth"] for i in range(4)])
    chosen = torch.tensor([0, 5, 2, 0])
    pred = _predict_paths(model, rgb, depth, chosen)
    with torch.no_grad():
        for b in range(4):
            ref = model(rgb[b:b + 1], depth[b:b + 1], path=int(model.paths[chosen[b]])).argmax(1)[0]
            assert torch.equal(pred[b], ref)
        assert gate_logits_for(model, rgb, depth).shape == (4, len(model.paths))


def test_eval_bad_sweep_and_missing_data(ckpt, tmp_path, capsys):
    from dynmm_edge.apps.cli import main

    assert main(["eval", str(ckpt), "--source", DATA, "--json", str(tmp_path / "x.json"), "--sweep", "a,b"]) == 2
    assert "--sweep" in capsys.readouterr().err
    assert main(["eval", str(ckpt), "--source", str(tmp_path / "missing"), "--json", str(tmp_path / "y.json")]) == 2
    assert "missing" in capsys.readouterr().err
    assert not (tmp_path / "y.json").exists()


def test_eval_finds_the_split_synth_wrote(ckpt, tmp_path, capsys):
    """`synth` writes train/ by default; eval reads test, else val, else train (with a note)."""
    from dynmm_edge.apps.cli import main
    root = tmp_path / "synth"
    assert main(["synth", "-o", str(root), "--frames", "3", "--size", "64x48"]) == 0
    capsys.readouterr()
    out = tmp_path / "e.json"
    assert main(["eval", str(ckpt), "--source", str(root), "--json", str(out), "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "no test or val split: evaluating on 'train'" in err
    rep = json.loads(out.read_text())
    assert rep["split"] == "train" and rep["frames"] == 3
    # with a test split present, test wins and no note is printed
    assert main(["synth", "-o", str(root), "--frames", "2", "--size", "64x48", "--split", "test", "--seed", "5"]) == 0
    assert main(["eval", str(ckpt), "--source", str(root), "--json", str(out), "--threads", "1"]) == 0
    assert "evaluating on 'train'" not in capsys.readouterr().err
    assert json.loads(out.read_text())["split"] == "test" and json.loads(out.read_text())["frames"] == 2
    # a split that is not there: the error lists the ones that are
    assert main(["eval", str(ckpt), "--source", str(root), "--split", "val", "--json", str(out)]) == 2
    assert "no split 'val'; splits here: test, train" in capsys.readouterr().err
    # a split folder given directly works too
    assert main(["eval", str(ckpt), "--source", str(root / "test"), "--json", str(out), "--threads", "1"]) == 0
    assert json.loads(out.read_text())["frames"] == 2

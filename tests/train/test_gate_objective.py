"""Gate objectives that learn per-frame choices, the stalled-gate warning, the cue gate, the front."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")


def test_argmin_targets_and_mu_for_budget():
    from dynmm_edge.train.loop import argmin_targets, mu_for_budget

    costs = torch.tensor([0.0, 0.3, 0.5, 1.0])
    # frame 0: depth useless; frame 1: each stage helps a bit; frame 2: only full depth helps
    err = torch.tensor([[0.10, 0.10, 0.10, 0.10], [0.30, 0.20, 0.15, 0.14], [0.50, 0.49, 0.48, 0.10]])
    assert argmin_targets(err, costs, 0.0).tolist() == [0, 3, 3]  # ties -> cheaper
    assert argmin_targets(err, costs, 0.2).tolist() == [0, 2, 3]
    assert argmin_targets(err, costs, 10.0).tolist() == [0, 0, 0]
    mu = mu_for_budget(err, costs, budget=0.5)
    t = argmin_targets(err, costs, mu)
    assert float(costs[t].mean()) <= 0.5 + 1e-6 and t.tolist() == [0, 2, 3] or t.tolist() == [0, 1, 3]
    assert mu_for_budget(err, costs, budget=1.0) == 0.0


def test_pixel_error_frame_loss():
    from dynmm_edge.train.loop import frame_losses

    labels = torch.tensor([[[0, 1], [1, 255]]])
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 0] = 1.0  # predicts class 0 everywhere
    assert frame_losses(logits, labels, None, "pixel_error").tolist() == pytest.approx([2 / 3])


def test_stalled_gate_warning():
    from dynmm_edge.train.loop import stalled_gate_warning

    ep = lambda e, seg, res: {"type": "epoch", "epoch": e, "stage": "gate", "seg_loss": seg,  # noqa: E731
                              "resource_loss": res}
    assert stalled_gate_warning([ep(1, 0.5, 0.0), ep(2, 0.4999, 0.0)]) is not None
    assert stalled_gate_warning([ep(1, 0.5, 0.0), ep(2, 0.45, 0.0)]) is None      # still learning
    assert stalled_gate_warning([ep(1, 0.5, 0.01), ep(2, 0.5, 0.0)]) is None      # budget bound
    assert stalled_gate_warning([ep(1, 0.5, 0.0)]) is None


def _tiny_cfg(tmp_path, **kw):
    from dynmm_edge.train.loop import TrainConfig
    return TrainConfig(preset="tiny-test", data="synthetic://?frames=16&hard_fraction=0.5&seed=3",
                       out=str(tmp_path / "run"), epochs_stage1=1, epochs_stage2=0, epochs_gate=2, batch_size=8,
                       threads=1, progress=False, **kw)


def test_argmin_gate_stage_learns_from_targets_and_logs_them(tmp_path):
    from dynmm_edge.train.loop import train
    from dynmm_edge.train.schedule import cosine_lr

    res = train(_tiny_cfg(tmp_path, gate_objective="argmin", gate_frame_loss="pixel_error", budget=0.4,
                          gate_cues=True))
    tg = [h for h in res["history"] if h["type"] == "gate_targets"]
    assert len(tg) == 1 and tg[0]["target_mean_cost"] <= 0.4 + 1e-6 and tg[0]["mu"] >= 0
    assert sum(tg[0]["target_histogram"].values()) == 16
    gate_epochs = [h for h in res["history"] if h["type"] == "epoch" and h["stage"] == "gate"]
    assert gate_epochs[-1]["seg_loss"] < gate_epochs[0]["seg_loss"]  # CE to the targets goes down
    # the gate stage's learning rate decays (cosine over its steps; 2 batches per epoch here)
    assert gate_epochs[0]["lr"] == pytest.approx(cosine_lr(1, 4, 1e-2)) and gate_epochs[1]["lr"] == pytest.approx(cosine_lr(3, 4, 1e-2))
    assert res["model"].config.gate_cues


def test_expected_objective_warns_when_budget_never_binds(tmp_path):
    from dynmm_edge.train.loop import train

    with pytest.warns(RuntimeWarning, match="resource loss 0"):
        res = train(_tiny_cfg(tmp_path, budget=1.0, gate_lr=1e-9, temp_start=0.05, temp_end=0.05))
    assert any(h["type"] == "warning" for h in res["history"])


def test_cue_gate_sees_holes_and_exports_small(tmp_path):
    from dynmm_edge.model.gate import CUE_NAMES, frame_cues
    from dynmm_edge.model.net import DynMMNet
    from dynmm_edge.model.presets import get_preset

    rgb = torch.zeros(1, 3, 64, 64)
    depth = torch.ones(1, 1, 64, 64)
    depth[..., :32] = 0  # left half invalid
    cues = frame_cues(rgb, depth, 4)
    assert cues.shape == (1, len(CUE_NAMES), 16, 16)
    inv = cues[0, CUE_NAMES.index("depth_invalid")]
    assert float(inv[:, :8].mean()) == 1.0 and float(inv[:, 8:].mean()) == 0.0
    net = DynMMNet(get_preset("demo").replace(gate_cues=True)).eval()
    assert sum(p.numel() for p in net.gate.parameters()) < 5000
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    x = net.example_inputs(1)
    x["depth"][..., :40] = 0
    path = tmp_path / "gate.onnx"
    torch.onnx.export(net.gate, (x["rgb"], x["depth"]), str(path), input_names=["rgb", "depth"],
                      output_names=["gate_logits"], opset_version=17, dynamo=False)
    onnx.checker.check_model(onnx.load(str(path)))
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"rgb": x["rgb"].numpy(), "depth": x["depth"].numpy()})[0]
    with torch.no_grad():
        ref = net.gate(x["rgb"], x["depth"]).numpy()
    assert np.allclose(out, ref, atol=1e-4)


def test_front_points_and_report_front_delta():
    from dynmm_edge.train.evaluate import EvalRecords, build_report, front_miou, front_points

    pts = front_points([0.0, 0.1, 0.3, 0.5, 0.8, 1.0], [0.60, 0.62, 0.80, 0.81, 0.805, 0.84])
    assert (0.1, 0.62) not in pts and (0.8, 0.805) not in pts  # under the hull / dominated
    assert front_miou(pts, 0.15) == pytest.approx(0.60 + 0.15 / 0.3 * 0.20)
    # two paths; frame 0 needs depth, frame 1 does not: choosing per frame beats time-sharing
    conf = np.zeros((2, 2, 2, 2), np.int64)
    conf[0, 0] = [[5, 5], [5, 5]]
    conf[0, 1] = [[10, 0], [0, 10]]
    conf[1, :] = [[10, 0], [0, 10]]
    logits = np.array([[0.0, 5.0], [5.0, 0.0]], np.float32)
    rep = build_report(EvalRecords(logits, conf, ["camouflaged", "sunlit"]), [0, 1], [0.0, 1e8], ["a", "b"])
    assert set(rep["static"]) == {"0", "1"} and rep["static"]["1"]["depth_macs_mean"] == 1e8
    dyn = rep["modes"]["dynamic"]
    assert dyn["depth_macs_fraction"] == 0.5 and dyn["path_histogram"] == {"0": 1, "1": 1}
    assert dyn["miou"] == pytest.approx(1.0) and dyn["front_delta"] > 0.1
    assert set(rep["by_kind"]) == {"camouflaged", "sunlit"} and rep["by_kind"]["sunlit"]["frames"] == 1

"""Exported branches composed per path reproduce the eager model (labels and logits)."""
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from dynmm_edge.errors import DynMMError, ManifestError  # noqa: E402
from dynmm_edge.export.exporter import export_model  # noqa: E402
from dynmm_edge.manifest import load_manifest  # noqa: E402
from dynmm_edge.backends import make_backend  # noqa: E402
from dynmm_edge.runtime.session import Session  # noqa: E402


def _inputs(m, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(1, 3, m.height, m.width, generator=g), torch.randn(1, 1, m.height, m.width, generator=g))


def _assert_same_labels(labels, ref_logits, what, tie=1e-4):
    """Labels equal the eager argmax on every pixel whose top-2 logit margin exceeds float noise.

    Random-weight models have near-ties (margin ~1e-6) that FP32 reassociation may flip; trained
    models have none (the shipped demo model is checked for 100% in test_demo_model.py).
    """
    top2 = np.sort(ref_logits, axis=0)[-2:]
    decided = (top2[1] - top2[0]) > tie
    same = labels == ref_logits.argmax(0)
    assert same[decided].all(), f"{what}: {(~same[decided]).sum()} decided pixels differ"
    assert decided.mean() > 0.99, f"{what}: too many near-ties to compare"


def _check_all_paths(net, manifest, backend="ort", tol=1e-4, **opts):
    rgb, depth = _inputs(manifest)
    with Session(manifest, make_backend(backend, **opts)) as s:
        for k in manifest.path_values:
            out, path, _, (ran, _) = s.run_tensors(rgb.numpy(), depth.numpy(), path=k, return_logits=True)
            with torch.no_grad():
                ref = net(rgb, depth, path=k)
            assert path == k
            assert np.abs(out["logits"] - ref.numpy()).max() < tol, f"path {k}"
            _assert_same_labels(out["labels"][0], ref[0].numpy(), f"path {k}")
            depth_run = [b for b in ran if b.startswith("depth")]
            assert len(depth_run) == (k if net.config.gate == "raw" else max(k - 1, 0))


def test_tiny_all_paths_ort_and_torch(tiny_export):
    net, _, manifest = tiny_export
    _check_all_paths(net, manifest, "ort")
    _check_all_paths(net, manifest, "torch")


def _small(preset, **kw):
    from dynmm_edge.model.checkpoints import default_meta
    from dynmm_edge.model.net import DynMMNet
    from dynmm_edge.model.presets import get_preset
    torch.manual_seed(0)
    cfg = replace(get_preset(preset), **kw)
    net = DynMMNet(cfg).eval()
    from tests.conftest import _randomise_bn
    _randomise_bn(net, torch)
    meta = default_meta(preset)
    meta["classes"] = meta["classes"][: cfg.num_classes]
    return net, meta


def test_demo_preset_all_paths(tmp_path):
    net, meta = _small("demo")
    m = export_model((net, meta), tmp_path / "demo")
    _check_all_paths(net, m, "ort")
    _check_all_paths(net, m, "torch")


def test_r34_nbt1d_all_paths(tmp_path):
    # the R34-NBt1D architecture at reduced width and size so the test stays fast
    net, meta = _small("esanet-r34-nbt1d-nyuv2", width_mult=0.125, height=64, width=96,
                       decoder_channels=(32, 16, 16), decoder_blocks=(1, 1, 1))
    m = export_model((net, meta), tmp_path / "r34")
    _check_all_paths(net, m, "ort")
    _check_all_paths(net, m, "torch")


def test_adaptive_pyramid_pooling_exports_for_tensorrt(tmp_path):
    """Uneven adaptive bins (a 3x5 map, bins 1 and 5) export as Slice + ReduceMean, pass the
    TensorRT parser check at export, and the branches reproduce the eager model."""
    net, meta = _small("esanet-r34-nbt1d-nyuv2", width_mult=0.125, height=96, width=160,
                       decoder_channels=(32, 16, 16), decoder_blocks=(1, 1, 1))
    assert net.config.context_pooling == "adaptive"
    m = export_model((net, meta), tmp_path / "r34a")
    from dynmm_edge.export.trt_check import check_model
    trunk = onnx.load(str(m.folder / "trunk.onnx"))
    assert check_model(trunk, "trunk") == []
    ops = {n.op_type for n in trunk.graph.node}
    assert {"Slice", "ReduceMean"} <= ops
    _check_all_paths(net, m, "ort")


def test_stem_gate_r50_all_paths(tmp_path):
    net, meta = _small("dynmm-r50-nyuv2", width_mult=0.0625, height=64, width=64,
                       decoder_channels=(16, 16, 16), decoder_blocks=(1, 1, 1))
    m = export_model((net, meta), tmp_path / "r50")
    assert [b.name for b in m.branches][:2] == ["stem", "gate"]
    assert m.path_values == (1, 2, 3, 4, 5)
    _check_all_paths(net, m, "ort")


def test_manifest_contents(tiny_export):
    net, meta, m = tiny_export
    data = json.loads((m.folder / "manifest.json").read_text())
    assert data["schema_version"] == 1
    assert data["input"] == {"height": 64, "width": 64, "dynamic_batch": False}
    assert [b["name"] for b in data["branches"]] == ["gate", "depth0", "depth1", "depth2", "depth3", "depth4", "trunk"]
    trunk = next(b for b in data["branches"] if b["name"] == "trunk")
    assert [t["name"] for t in trunk["inputs"]] == ["rgb"] + [f"depth_feat_{i}" for i in range(5)] + ["depth_present"]
    assert {t["name"]: t["dtype"] for t in trunk["outputs"]} == {"logits": "float32", "labels": "int32"}
    # depth MACs are cumulative over segments and path 0 costs none
    dm = [m.depth_macs(k) for k in m.path_values]
    assert dm[0] == 0 and all(b > a for a, b in zip(dm, dm[1:]))
    assert m.total_macs(5) - m.total_macs(0) == dm[-1]
    for b in data["branches"]:
        assert all(isinstance(t["name"], str) and t["name"] for t in b["inputs"] + b["outputs"])
        model = onnx.load(str(m.folder / b["variants"]["fp32"]["file"]))
        assert model.opset_import[0].version == 17
        onnx.checker.check_model(model)


def test_dynamic_batch_export(tmp_path, tiny_export):
    net, meta, _ = tiny_export
    m = export_model((net, meta), tmp_path / "dyn", dynamic_batch=True)
    import onnxruntime as ort
    sess = ort.InferenceSession(str(m.folder / "depth0.onnx"), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"depth": np.zeros((3, 1, 64, 64), np.float32)})[0]
    assert out.shape[0] == 3
    assert m.branch("depth0").inputs[0].shape[0] == -1


def test_fp16_variant_close_to_fp32(tmp_path, tiny_export):
    net, meta, _ = tiny_export
    m = export_model((net, meta), tmp_path / "fp16", fp16=True)
    import onnxruntime as ort
    rgb, depth = _inputs(m)
    feeds = {"rgb": rgb.numpy(), "depth": depth.numpy()}
    for name in ("gate", "depth0"):
        b = m.branch(name)
        assert set(b.variants) == {"fp32", "fp16"}
        ref = ort.InferenceSession(str(m.file_path(b, "fp32"))).run(None, {t.name: feeds[t.name] for t in b.inputs})[0]
        s16 = ort.InferenceSession(str(m.file_path(b, "fp16")))
        assert s16.get_inputs()[0].type == "tensor(float)"  # FP32 IO kept
        out = s16.run(None, {t.name: feeds[t.name] for t in b.inputs})[0]
        assert out.dtype == np.float32
        assert np.abs(out - ref).max() <= 2e-2 * max(1.0, np.abs(ref).max())
    with Session(m, make_backend("ort"), precision="fp16") as s:
        out, _, _, _ = s.run_tensors(rgb.numpy(), depth.numpy(), path=5, return_logits=True)
    with torch.no_grad():
        ref = net(rgb, depth, path=5).numpy()
    assert np.abs(out["logits"] - ref).max() < 0.05 * max(1.0, np.abs(ref).max())
    assert (out["labels"][0] == ref.argmax(1)[0]).mean() > 0.95


def test_existing_folder_needs_force(tmp_path, tiny_export):
    net, meta, _ = tiny_export
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("x")
    with pytest.raises(DynMMError, match="--force"):
        export_model((net, meta), tmp_path / "taken")
    assert (tmp_path / "taken" / "keep.txt").read_text() == "x"


def test_interrupted_export_leaves_nothing(tmp_path, tiny_export, monkeypatch):
    net, meta, _ = tiny_export
    import dynmm_edge.export.exporter as ex
    calls = {"n": 0}
    real = ex.export_branch_onnx

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated Ctrl-C during export")
        return real(*a, **k)

    monkeypatch.setattr(ex, "export_branch_onnx", flaky)
    with pytest.raises(KeyboardInterrupt):
        export_model((net, meta), tmp_path / "model")
    assert list(tmp_path.iterdir()) == []  # no partial folder, nothing that could load


def _copy(m, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(m.folder, dst)
    return dst


def test_refuses_hash_mismatch_and_truncation(tmp_path, tiny_export):
    _, _, m = tiny_export
    dst = _copy(m, tmp_path)
    data = (dst / "depth2.onnx").read_bytes()
    (dst / "depth2.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ManifestError, match="depth2.*sha256"):
        load_manifest(dst)


def test_refuses_corrupt_onnx_even_with_matching_hash(tmp_path, tiny_export):
    from dynmm_edge.errors import BackendError
    from dynmm_edge.manifest import sha256_file
    _, _, m = tiny_export
    dst = _copy(m, tmp_path)
    (dst / "gate.onnx").write_bytes(b"\x00garbage" * 10)
    data = json.loads((dst / "manifest.json").read_text())
    data["branches"][0]["variants"]["fp32"]["sha256"] = sha256_file(dst / "gate.onnx")
    (dst / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BackendError, match="gate.*cannot load"):
        Session(load_manifest(dst), make_backend("ort"))


@pytest.mark.parametrize("bad", ["../outside.onnx", "/etc/passwd", "sub/../../x.onnx"])
def test_refuses_paths_escaping_folder(tmp_path, tiny_export, bad):
    _, _, m = tiny_export
    dst = _copy(m, tmp_path)
    data = json.loads((dst / "manifest.json").read_text())
    data["branches"][1]["variants"]["fp32"]["file"] = bad
    (dst / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="model folder"):
        load_manifest(dst)


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.update(schema_version=99), "schema_version 99"),
    (lambda d: d.pop("paths"), "missing key 'paths'"),
    (lambda d: d["paths"].update({"2": ["gate", "nope", "trunk"]}), "unknown branch"),
    (lambda d: d["paths"].update({"3": ["gate", "depth2", "trunk"]}), "depth_feat_1"),
    (lambda d: d["branches"][0].update(kind="magic"), "unknown kind"),
])
def test_manifest_validation_messages(tmp_path, tiny_export, mutate, match):
    _, _, m = tiny_export
    dst = _copy(m, tmp_path)
    data = json.loads((dst / "manifest.json").read_text())
    mutate(data)
    (dst / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=match):
        load_manifest(dst)


def test_not_json_and_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="no manifest.json"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(tmp_path)


def test_trt_static_check_flags_problems():
    from onnx import TensorProto, helper
    from dynmm_edge.export.trt_check import check_model
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    zp = helper.make_tensor("z", TensorProto.INT8, [], [3])
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q0"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"], name="dq0"),
             helper.make_node("Einsum", ["dq"], ["y"], name="weird", equation="ij->ij")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [scale, zp]),
                              opset_imports=[helper.make_opsetid("", 17)])
    problems = check_model(model, "b")
    assert any("non-zero zero-point" in p and "q0" in p for p in problems)
    assert any("Einsum" in p for p in problems)
    model.opset_import[0].version = 19
    assert any("opset 19" in p for p in check_model(model, "b"))


def test_untrained_preset_export_is_marked_and_warned(tmp_path, capsys):
    from dynmm_edge.apps.cli import main
    assert main(["export", "tiny-test", "-o", str(tmp_path / "u")]) == 0
    err = capsys.readouterr().err
    assert "UNTRAINED random weights" in err and "trained: false" in err
    m = load_manifest(tmp_path / "u")
    assert m.extra["trained"] is False
    assert m.gate["trained"] is False and m.gate["default_policy"] == "fixed:full"
    # a trained checkpoint (the shipped demo model) stays trained, with the gate's own policy
    assert main(["export", "demo", "-o", str(tmp_path / "d")]) == 0
    assert "UNTRAINED" not in capsys.readouterr().err
    d = load_manifest(tmp_path / "d")
    assert d.extra["trained"] is True and d.gate["default_policy"] == "argmax"


def test_export_flags_size_num_classes_dataset(tmp_path, capsys):
    from dynmm_edge.apps.cli import main
    assert main(["export", "tiny-test", "-o", str(tmp_path / "c"), "--size", "96x64", "--num-classes", "19"]) == 0
    m = load_manifest(tmp_path / "c")
    assert (m.width, m.height) == (96, 64) and len(m.classes) == 19 and len({tuple(c) for c in m.palette}) == 19
    assert "96x64" in capsys.readouterr().out
    assert main(["export", "tiny-test", "-o", str(tmp_path / "x"), "--dataset", "nyuv2"]) == 1
    assert "dataset/overrides apply to imported ESANet/DynMM checkpoints" in capsys.readouterr().err

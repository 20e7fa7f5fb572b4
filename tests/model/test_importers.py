"""Importer tests on state_dicts built from ESANet's / DynMM's published key layout rules.

The layout is written out here independently of dynmm_edge.model (docs/IMPORT.md lists the facts),
so a naming drift in our model shows up as a missing/unexpected key, not as a silent pass.
Small widths keep them fast; full-size layouts are built on the 'meta' device (shapes only).
"""
import re
from collections import OrderedDict

import pytest

torch = pytest.importorskip("torch")

from dynmm_edge.errors import CheckpointError  # noqa: E402
from dynmm_edge.model import importers  # noqa: E402
from dynmm_edge.model.importers import detect_format, import_checkpoint, infer_config, map_state_dict  # noqa: E402
from dynmm_edge.model.net import DynMMNet  # noqa: E402

LAYERS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3)}


class Layout:
    """Collects name -> shape following ESANet's module layout rules."""

    def __init__(self):
        self.shapes = OrderedDict()

    def conv(self, name, cout, cin, kh, kw=None, bias=False):
        self.shapes[f"{name}.weight"] = (cout, cin, kh, kh if kw is None else kw)
        if bias:
            self.shapes[f"{name}.bias"] = (cout,)

    def bn(self, name, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            self.shapes[f"{name}.{p}"] = (c,)
        self.shapes[f"{name}.num_batches_tracked"] = ()

    def convbnact(self, name, cout, cin, k):
        self.conv(f"{name}.conv", cout, cin, k)
        self.bn(f"{name}.bn", cout)

    def nbt1d(self, name, cin, p):
        self.conv(f"{name}.conv3x1_1", p, cin, 3, 1, bias=True)
        self.conv(f"{name}.conv1x3_1", p, p, 1, 3, bias=True)
        self.bn(f"{name}.bn1", p)
        self.conv(f"{name}.conv3x1_2", p, p, 3, 1, bias=True)
        self.conv(f"{name}.conv1x3_2", p, p, 1, 3, bias=True)
        self.bn(f"{name}.bn2", p)

    def encoder(self, name, encoder, block, cin, w):
        stem = int(64 * w)
        self.conv(f"{name}.conv1", stem, cin, 7)
        self.bn(f"{name}.bn1", stem)
        inplanes, outs = stem, [stem]
        expansion = 4 if block == "bottleneck" else 1
        for li, (planes, count) in enumerate(zip((64, 128, 256, 512), LAYERS[encoder])):
            p = int(planes * w)
            for b in range(count):
                n = f"{name}.layer{li + 1}.{b}"
                stride = 2 if li > 0 and b == 0 else 1
                if block == "basic":
                    self.conv(f"{n}.conv1", p, inplanes, 3)
                    self.bn(f"{n}.bn1", p)
                    self.conv(f"{n}.conv2", p, p, 3)
                    self.bn(f"{n}.bn2", p)
                elif block == "nbt1d":
                    self.nbt1d(n, inplanes, p)
                else:
                    self.conv(f"{n}.conv1", p, inplanes, 1)
                    self.bn(f"{n}.bn1", p)
                    self.conv(f"{n}.conv2", p, p, 3)
                    self.bn(f"{n}.bn2", p)
                    self.conv(f"{n}.conv3", 4 * p, p, 1)
                    self.bn(f"{n}.bn3", 4 * p)
                if stride != 1 or inplanes != p * expansion:
                    self.conv(f"{n}.downsample.0", p * expansion, inplanes, 1)
                    self.bn(f"{n}.downsample.1", p * expansion)
                inplanes = p * expansion
            outs.append(inplanes)
        return outs


def esanet_shapes(encoder="resnet18", block="basic", w=0.25, dec=(64, 32, 16), dec_blocks=(1, 1, 1),
                  num_classes=40, ppm_branches=2, gate_hidden=None):
    lay = Layout()
    ch = lay.encoder("encoder_rgb", encoder, block, 3, w)
    lay.encoder("encoder_depth", encoder, block, 1, w)
    for i, c in enumerate(ch):
        for side in ("se_rgb", "se_depth"):
            lay.conv(f"se_layer{i}.{side}.fc.0", c // 16, c, 1, bias=True)
            lay.conv(f"se_layer{i}.{side}.fc.2", c, c // 16, 1, bias=True)
    for k, (enc_c, dec_c) in zip((1, 2, 3), ((ch[1], dec[2]), (ch[2], dec[1]), (ch[3], dec[0]))):
        if enc_c != dec_c:
            lay.convbnact(f"skip_layer{k}.0", dec_c, enc_c, 1)
    red = ch[4] // ppm_branches
    for i in range(ppm_branches):
        lay.convbnact(f"context_module.features.{i}.1", red, ch[4], 1)
    lay.convbnact("context_module.final_conv", dec[0], ch[4] + red * ppm_branches, 1)
    cin = dec[0]
    for k in (1, 2, 3):
        n = f"decoder.decoder_module_{k}"
        lay.convbnact(f"{n}.conv3x3", dec[k - 1], cin, 3)
        for j in range(dec_blocks[k - 1]):
            lay.nbt1d(f"{n}.decoder_blocks.{j}", dec[k - 1], dec[k - 1])
        lay.conv(f"{n}.upsample.conv", dec[k - 1], 1, 3, bias=True)
        lay.conv(f"{n}.side_output", num_classes, dec[k - 1], 1, bias=True)
        cin = dec[k - 1]
    lay.conv("decoder.conv_out", num_classes, dec[2], 3, bias=True)
    lay.conv("decoder.upsample1.conv", num_classes, 1, 3, bias=True)
    lay.conv("decoder.upsample2.conv", num_classes, 1, 3, bias=True)
    if gate_hidden:
        h = gate_hidden
        lay.conv("gate_layer.conv.0", h, 2 * ch[0], 5, bias=True)
        lay.bn("gate_layer.conv.1", h)
        lay.conv("gate_layer.conv.3", h, h, 5, bias=True)
        lay.bn("gate_layer.conv.4", h)
        lay.conv("gate_layer.fc", 5, h, 1)
    return lay.shapes


def materialise(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for k, s in shapes.items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(int(torch.randint(1, 1000, (1,), generator=g)), dtype=torch.long)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(s, generator=g) + 0.5
        else:
            sd[k] = torch.randn(s, generator=g) * 0.1
    return sd


def meta_tensors(shapes):
    return OrderedDict((k, torch.empty(s, device="meta")) for k, s in shapes.items())


def save(tmp_path, name, obj):
    path = tmp_path / name
    torch.save(obj, path)
    return path


# ---------------------------------------------------------------------------------------------
CASES = {
    "esanet-r18-basic": dict(encoder="resnet18", block="basic"),
    "esanet-r34-nbt1d": dict(encoder="resnet34", block="nbt1d"),
    "esanet-r50": dict(encoder="resnet50", block="bottleneck", dec=(64, 32, 32)),
    "dynmm-r50-stem-gate": dict(encoder="resnet50", block="bottleneck", gate_hidden=8),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """One file per layout, written once for the module (the weights are random but fixed)."""
    root = tmp_path_factory.mktemp("ckpts")
    out = {}
    for i, (name, kw) in enumerate(CASES.items()):
        sd = materialise(esanet_shapes(**kw), seed=i)
        path = root / f"{name}.pth"
        torch.save({"epoch": 123, "state_dict": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 0.01}]}},
                   path)
        out[name] = (path, sd)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_import_puts_every_tensor_in_the_model_unchanged(checkpoints, name):
    path, sd = checkpoints[name]
    model, meta = import_checkpoint(path, height=64, width=64, dataset="nyuv2")
    state = model.state_dict()
    dynmm = name.startswith("dynmm")
    for key, value in sd.items():
        ours = "gate." + key[len("gate_layer."):] if key.startswith("gate_layer.") else key
        assert ours in state, key
        assert state[ours].shape == value.shape and torch.equal(state[ours], value), key
    # nothing in the model came from anywhere else except an untrained gate (ESANet)
    from_file = {("gate." + k[len("gate_layer."):]) if k.startswith("gate_layer.") else k for k in sd}
    extra = sorted(set(state) - from_file)
    assert all(k.startswith("gate.") for k in extra)
    assert (extra == []) == dynmm
    assert meta["import"]["dropped"] == []
    assert meta["import"]["format"] == ("dynmm" if dynmm else "esanet")
    assert meta["import"]["epoch"] == 123 and meta["import"]["ignored_entries"] == ["epoch", "optimizer"]
    assert meta["gate_trained"] is dynmm
    assert meta["default_path"] == (None if dynmm else max(model.paths))
    assert meta["import"]["left_at_init"] == extra
    assert len(meta["classes"]) == 40 and len(meta["palette"]) == 40 and meta["classes"][0] == "wall"
    assert meta["preprocess"]["depth_mean"] == pytest.approx(2841.95)
    assert not model.training


def test_inferred_configs(checkpoints):
    cfg = infer_config(checkpoints["esanet-r18-basic"][1], 64, 64)
    assert (cfg.encoder, cfg.block, cfg.width_mult, cfg.num_classes) == ("resnet18", "basic", 0.25, 40)
    assert cfg.decoder_channels == (64, 32, 16) and cfg.decoder_blocks == (1, 1, 1)
    assert (cfg.context, cfg.context_bins, cfg.upsampling) == ("ppm", (1, 5), "learned-zeropad")
    assert (cfg.gate, cfg.skip_mode, cfg.se_reduction) == ("raw", "zero_depth", 16)
    assert infer_config(checkpoints["esanet-r34-nbt1d"][1], 64, 64).encoder == "resnet34"
    assert infer_config(checkpoints["esanet-r34-nbt1d"][1], 64, 64).block == "nbt1d"
    cfg = infer_config(checkpoints["dynmm-r50-stem-gate"][1], 64, 64)
    assert (cfg.encoder, cfg.block, cfg.gate, cfg.skip_mode) == ("resnet50", "bottleneck", "stem", "rgb_passthrough")
    assert cfg.gate_channels[0] == 8 and cfg.paths == (1, 2, 3, 4, 5)
    cfg = infer_config(checkpoints["esanet-r18-basic"][1], 64, 64, overrides={"upsampling": "learned"})
    assert cfg.upsampling == "learned"


def test_full_size_layouts_match_the_presets():
    """Shapes only ('meta' tensors): the released ESANet R34-NBt1D and DynMM R50 layouts."""
    from dynmm_edge.model.presets import PRESETS
    r34 = meta_tensors(esanet_shapes("resnet34", "nbt1d", 1.0, (512, 256, 128), (3, 3, 3), 40))
    cfg = infer_config(r34)
    assert cfg == PRESETS["esanet-r34-nbt1d-nyuv2"]
    assert cfg.upsampling == "learned-zeropad"  # what ESANet's args default and released models use
    r50 = meta_tensors(esanet_shapes("resnet50", "bottleneck", 1.0, (512, 256, 128), (3, 3, 3), 40, gate_hidden=8))
    assert detect_format({"state_dict": r50, "epoch": 1}) == "dynmm"
    cfg = infer_config(r50)
    assert cfg == PRESETS["dynmm-r50-nyuv2"]
    # our model has exactly these keys and shapes at full size (checked without allocating weights)
    from dynmm_edge.model.net import DynMMNet
    with torch.device("meta"):
        target = DynMMNet(cfg).state_dict()
    full, report = map_state_dict(r50, "dynmm", target)
    assert report["renamed"] == 15 and report["dropped"] == [] and len(full) == len(r50)
    assert tuple(full["gate.conv.0.weight"].shape) == (8, 128, 5, 5)


def test_stem_gate_computes_dynmm_gate_function(checkpoints):
    """Gate logits equal DynMM's GlobalGate arithmetic written with torch.nn.functional."""
    import torch.nn.functional as F
    path, sd = checkpoints["dynmm-r50-stem-gate"]
    model, _ = import_checkpoint(path, height=64, width=64)
    g = torch.Generator().manual_seed(5)
    fused0, depth0 = torch.randn(2, 16, 48, 48, generator=g), torch.randn(2, 16, 48, 48, generator=g)
    x = torch.cat([F.max_pool2d(fused0, 3, 2, 1), F.max_pool2d(depth0, 3, 2, 1)], 1)

    def bn(y, p):
        return F.batch_norm(y, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"],
                            False, 0.0, 1e-5)
    y = torch.tanh(bn(F.conv2d(x, sd["gate_layer.conv.0.weight"], sd["gate_layer.conv.0.bias"], 2), "gate_layer.conv.1"))
    y = torch.tanh(bn(F.conv2d(y, sd["gate_layer.conv.3.weight"], sd["gate_layer.conv.3.bias"], 2), "gate_layer.conv.4"))
    ref = F.conv2d(F.adaptive_avg_pool2d(y, 1), sd["gate_layer.fc.weight"]).flatten(1)
    with torch.no_grad():
        got = model.gate_logits(fused0, depth0)
    assert got.shape == (2, 5)
    assert torch.allclose(got, ref, atol=1e-5)


def test_imported_model_runs_every_path(checkpoints):
    path, _ = checkpoints["esanet-r18-basic"]
    model, meta = import_checkpoint(path, height=64, width=64)
    rgb, depth = torch.randn(1, 3, 64, 64), torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        outs = {p: model(rgb, depth, path=p) for p in model.paths}
    assert all(o.shape == (1, 40, 64, 64) and torch.isfinite(o).all() for o in outs.values())
    assert not torch.equal(outs[0], outs[meta["default_path"]])  # depth matters in the full path


def test_module_prefix_bare_state_dict_and_sunrgbd(tmp_path):
    sd = materialise(esanet_shapes(num_classes=37), seed=9)
    path = save(tmp_path, "dp.pth", OrderedDict(("module." + k, v) for k, v in sd.items()))
    model, meta = import_checkpoint(path, height=64, width=64)
    assert meta["dataset"] == "sunrgbd" and len(meta["classes"]) == 37 and meta["classes"][-1] == "bag"
    assert meta["preprocess"]["depth_mean"] == pytest.approx(2378.14, abs=0.01)
    assert meta["preprocess"]["depth_std"] == pytest.approx(1235.115, abs=0.01)
    assert meta["import"]["depth_stats_native"]["depth_mean"] == pytest.approx(19025.15)
    assert meta["import"]["ignored_entries"] == [] and meta["import"]["epoch"] is None
    assert torch.equal(model.state_dict()["decoder.conv_out.weight"], sd["decoder.conv_out.weight"])


def test_old_checkpoint_without_num_batches_tracked_loads(tmp_path):
    sd = materialise(esanet_shapes(), seed=2)
    sd = OrderedDict((k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    _, meta = import_checkpoint(save(tmp_path, "old.pth", {"state_dict": sd}), height=64, width=64)
    assert len(meta["import"]["defaulted"]) > 50
    assert all(k.endswith("num_batches_tracked") for k in meta["import"]["defaulted"])


def test_training_only_keys_are_dropped_and_listed():
    shapes = esanet_shapes()
    sd = meta_tensors(shapes)
    target = OrderedDict((k, v) for k, v in sd.items() if "side_output" not in k)
    full, report = map_state_dict(sd, "esanet", target)
    assert report["dropped"] == sorted(k for k in sd if "side_output" in k) and len(report["dropped"]) == 6
    assert "decoder.decoder_module_1.side_output.weight" not in full


# ---- failures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_sd():
    return materialise(esanet_shapes(), seed=3)


def _expect(tmp_path, obj, pattern, **kw):
    path = save(tmp_path, "bad.pth", obj)
    with pytest.raises(CheckpointError, match=pattern) as info:
        import_checkpoint(path, height=64, width=64, **kw)
    assert "bad.pth" in str(info.value)
    return str(info.value)


def test_missing_key_is_named(tmp_path, small_sd):
    sd = OrderedDict(small_sd)
    del sd["encoder_depth.layer2.0.bn1.running_mean"]
    _expect(tmp_path, {"state_dict": sd}, r"1 missing key\(s\): encoder_depth\.layer2\.0\.bn1\.running_mean")


def test_unexpected_key_is_named(tmp_path, small_sd):
    sd = OrderedDict(small_sd)
    sd["decoder.aux_head.weight"] = torch.zeros(3, 3)
    _expect(tmp_path, {"state_dict": sd}, r"unexpected key\(s\): decoder\.aux_head\.weight")


def test_shape_mismatch_is_named_with_both_shapes(tmp_path, small_sd):
    sd = OrderedDict(small_sd)
    sd["se_layer2.se_depth.fc.0.bias"] = torch.zeros(5)
    msg = _expect(tmp_path, {"state_dict": sd}, r"se_layer2\.se_depth\.fc\.0\.bias: file \(5,\) vs model \(2,\)")
    assert "shape mismatch" in msg


def test_wrong_class_count_for_dataset(tmp_path, small_sd):
    _expect(tmp_path, {"state_dict": small_sd}, r"40 classes but dataset 'sunrgbd' has 37", dataset="sunrgbd")
    _expect(tmp_path, {"state_dict": small_sd}, r"unknown dataset 'kitti'.*'generic'", dataset="kitti")


def test_any_class_count_imports_with_generated_names_and_palette(tmp_path):
    sd = materialise(esanet_shapes(num_classes=13), seed=4)
    path = save(tmp_path, "c13.pth", {"state_dict": sd})
    model, meta = import_checkpoint(path, height=64, width=64)
    assert meta["dataset"] == "generic" and meta["classes"][12] == "class_12" and len(meta["palette"]) == 13
    assert len({tuple(c) for c in meta["palette"]}) == 13
    assert "NYUv2 statistics used" in meta["import"]["depth_stats"]
    with pytest.raises(CheckpointError, match=r"13 classes, not the 19 asked for"):
        import_checkpoint(path, height=64, width=64, num_classes=19)


def test_cityscapes_19_classes_import(tmp_path):
    sd = materialise(esanet_shapes("resnet34", "nbt1d", num_classes=19), seed=5)
    path = save(tmp_path, "cs.pth", {"epoch": 3, "state_dict": sd})
    for dataset in (None, "cityscapes"):
        model, meta = import_checkpoint(path, height=64, width=128, dataset=dataset)
        assert meta["dataset"] == "cityscapes" and meta["classes"][0] == "road" and meta["classes"][-1] == "bicycle"
        assert model.config.num_classes == 19


def test_numpy_scalars_in_checkpoint_load_with_weights_only(tmp_path, small_sd):
    np = pytest.importorskip("numpy")
    path = save(tmp_path, "np.pth", {"epoch": 7, "state_dict": small_sd, "best_miou": np.float64(0.503),
                                     "best_miou_epoch": np.int64(450)})
    model, meta = import_checkpoint(path, height=64, width=64)
    assert "best_miou" in meta["import"]["ignored_entries"] and meta["import"]["epoch"] == 7
    # anything beyond numpy scalars stays refused, and the message names the global
    import argparse
    bad = save(tmp_path, "bad.pth", {"state_dict": small_sd, "args": argparse.Namespace(lr=0.01)})
    with pytest.raises(CheckpointError, match=r"bad\.pth: cannot read.*argparse\.Namespace"):
        import_checkpoint(bad)


def _adaptive_reference(model):
    """The same weights with every pyramid pool replaced by torch's nn.AdaptiveAvgPool2d(bins)."""
    import copy
    ref = copy.deepcopy(model)
    for feature, bins in zip(ref.context_module.features, ref.config.context_bins):
        feature[0] = torch.nn.AdaptiveAvgPool2d(bins)
    return ref


@pytest.mark.parametrize("height,width", [(480, 640), (384, 512), (256, 320), (224, 320)])
@pytest.mark.parametrize("name", ["esanet-r34-nbt1d", "dynmm-r50-stem-gate"])
def test_import_matches_adaptive_pyramid_pooling_at_any_size(checkpoints, name, height, width):
    """ESANet pools adaptively; the imported model must give the same logits at every input size."""
    path, _ = checkpoints[name]
    model, meta = import_checkpoint(path, height=height, width=width, dataset="nyuv2")
    assert model.config.context_pooling == "adaptive"
    assert not any(isinstance(m, torch.nn.AdaptiveAvgPool2d) for m in model.modules())
    ref = _adaptive_reference(model).eval()
    g = torch.Generator().manual_seed(height + width)
    rgb, depth = torch.randn(1, 3, height, width, generator=g), torch.randn(1, 1, height, width, generator=g)
    paths = (max(model.paths),) if name.startswith("esanet") else (1, 3, 5)
    with torch.no_grad():
        for p in paths:
            got, want = model(rgb, depth, path=p), ref(rgb, depth, path=p)
            rel = float((got - want).abs().max() / want.abs().max())
            assert rel < 1e-4, (p, rel)
    # the context module alone, on a feature map with real spatial structure (random weights make the
    # whole net's context contribution nearly constant): adaptive matches torch, fixed windows do not
    x = torch.randn(1, model.stage_channels[4], height // 32, width // 32, generator=g) * 3
    with torch.no_grad():
        want = ref.context_module(x)
        rel = float((model.context_module(x) - want).abs().max() / want.abs().max())
        assert rel < 1e-4, rel
        if (height // 32) % 5 or (width // 32) % 5:
            fixed = DynMMNet(model.config.replace(context_pooling="fixed")).eval()
            fixed.load_state_dict(model.state_dict())
            assert float((fixed.context_module(x) - want).abs().max() / want.abs().max()) > 1e-2


def test_not_a_dict_and_non_tensor_entries(tmp_path):
    _expect(tmp_path, [1, 2, 3], r"expected a dict.*got list")
    _expect(tmp_path, {"state_dict": {"encoder_rgb.conv1.weight": 3}}, r"not named tensors: 'encoder_rgb\.conv1\.weight'")
    _expect(tmp_path, {"state_dict": {}}, r"state_dict is empty")
    _expect(tmp_path, {"state_dict": {"backbone.weight": torch.zeros(1)}}, r"not an ESANet/DynMM.*encoder_rgb\.conv1\.weight")


def test_corrupt_truncated_and_absent_files(tmp_path, small_sd):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pth: cannot read"):
        import_checkpoint(junk)
    whole = save(tmp_path, "whole.pth", {"state_dict": small_sd})
    cut = tmp_path / "cut.pth"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pth: cannot read"):
        import_checkpoint(cut)
    with pytest.raises(CheckpointError, match=r"nothere\.pth: no such"):
        import_checkpoint(tmp_path / "nothere.pth")


def test_unsupported_variants_are_rejected(tmp_path, small_sd):
    no_se = OrderedDict((k, v) for k, v in small_sd.items() if not k.startswith("se_layer"))
    _expect(tmp_path, no_se, r"plain 'add'")
    bilinear = OrderedDict((k, v) for k, v in small_sd.items() if not re.search(r"upsample\d?\.conv", k))
    _expect(tmp_path, bilinear, r"bilinear/nearest upsampling")
    mixed = materialise(esanet_shapes("resnet34", "nbt1d"), seed=6)
    for k in [k for k in mixed if k.startswith("encoder_depth.")]:
        del mixed[k]
    for k, v in small_sd.items():
        if k.startswith("encoder_depth."):
            mixed[k] = v
    _expect(tmp_path, mixed, r"RGB encoder \(3, 4, 6, 3\)/nbt1d and depth encoder \(2, 2, 2, 2\)/basic differ")


def test_detect_format_variants(small_sd):
    assert detect_format(small_sd) == "esanet"
    assert detect_format({"state_dict": small_sd, "epoch": 3}) == "esanet"
    assert detect_format({"config": {"encoder": "resnet18"}, "state_dict": small_sd}) == "ours"
    assert detect_format({"gate.fc.weight": torch.zeros(1), **small_sd}) == "ours"
    with pytest.raises(CheckpointError, match="dynmm_edge checkpoint"):
        infer_config({"gate.fc.weight": torch.zeros(1), **small_sd})


def test_palette_is_distinct_and_voc_ordered():
    pal = importers.voc_palette(40)
    assert pal[:3] == [(128, 0, 0), (0, 128, 0), (128, 128, 0)]
    assert len(set(pal)) == 40


def test_load_model_imports_and_reimport_survives_our_save(checkpoints, tmp_path):
    """checkpoints.load_model() hands foreign files to import_checkpoint; a re-saved import keeps its facts."""
    from dynmm_edge.model.checkpoints import load_checkpoint, load_model, save_checkpoint
    path, sd = checkpoints["dynmm-r50-stem-gate"]
    model, meta = load_model(path, height=64, width=64, dataset="nyuv2")
    assert meta["import"]["format"] == "dynmm" and model.config.gate == "stem"
    assert torch.equal(model.state_dict()["gate.fc.weight"], sd["gate_layer.fc.weight"])
    ours = save_checkpoint(tmp_path / "ours.pt", model, meta)
    assert detect_format(torch.load(ours, weights_only=True)) == "ours"
    with pytest.raises(CheckpointError, match="dynmm_edge checkpoint"):
        import_checkpoint(ours)
    again, meta2 = load_checkpoint(ours)
    assert meta2["train"]["gate_trained"] is True and meta2["train"]["weights"] == "imported from dynmm"
    assert meta2["classes"] == meta["classes"] and again.config == model.config
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in again.state_dict().items())

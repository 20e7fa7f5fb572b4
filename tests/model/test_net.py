import dataclasses

import pytest
import torch

from dynmm_edge.model import ModelConfig, get_preset
from dynmm_edge.model.net import DynMMNet

TINY = get_preset("tiny-test")
STEM = TINY.replace(gate="stem", skip_mode="rgb_passthrough")
CONFIGS = {
    "raw-zero": TINY,
    "raw-pass": TINY.replace(skip_mode="rgb_passthrough"),
    "stem-pass": STEM,
    "stem-zero": STEM.replace(skip_mode="zero_depth"),
}


def _randomise_bn(model):
    # non-trivial BN statistics so skipped/non-skipped paths really differ
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


def make(config, batch=2):
    model = _randomise_bn(DynMMNet(config)).eval()
    g = torch.Generator().manual_seed(2)
    rgb = torch.randn(batch, 3, config.height, config.width, generator=g)
    depth = torch.randn(batch, 1, config.height, config.width, generator=g)
    return model, rgb, depth


def _count_depth_calls(model):
    calls = {i: 0 for i in range(5)}
    handles = [model.encoder_depth.conv1.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))]
    for i in range(1, 5):
        layer = getattr(model.encoder_depth, f"layer{i}")
        handles.append(layer.register_forward_hook(lambda *a, i=i: calls.__setitem__(i, calls[i] + 1)))
    for i in range(5):
        se = getattr(model, f"se_layer{i}").se_depth
        handles.append(se.register_forward_hook(lambda *a, i=i: calls.__setitem__(f"se{i}", calls.get(f"se{i}", 0) + 1)))
    return calls, handles


def test_config_validation_names_field_and_round_trips():
    d = TINY.to_dict()
    assert ModelConfig.from_dict(d) == TINY
    with pytest.raises(ValueError, match="height"):
        TINY.replace(height=70)
    with pytest.raises(ValueError, match="bogus"):
        ModelConfig.from_dict({**d, "bogus": 1})
    with pytest.raises(ValueError, match="skip_mode"):
        ModelConfig.from_dict({**d, "skip_mode": "nope"})
    with pytest.raises(ValueError, match="block"):
        TINY.replace(encoder="resnet50")
    with pytest.raises(dataclasses.FrozenInstanceError):
        TINY.height = 128
    assert TINY.paths == (0, 1, 2, 3, 4, 5) and STEM.paths == (1, 2, 3, 4, 5)


def test_get_preset_unknown_lists_names():
    with pytest.raises(KeyError, match="demo"):
        get_preset("nope")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_true_skipping_executes_only_selected_depth_stages(name):
    model, rgb, depth = make(CONFIGS[name])
    calls, handles = _count_depth_calls(model)
    with torch.no_grad():
        for path in model.paths:
            for key in list(calls):
                calls[key] = 0
            out = model(rgb, depth, path=path)
            assert out.shape == (2, TINY.num_classes, TINY.height, TINY.width)
            assert [calls[i] for i in range(5)] == [1 if i < path else 0 for i in range(5)], (name, path)
            assert [calls.get(f"se{i}", 0) for i in range(5)] == [1 if i < path else 0 for i in range(5)]
    for h in handles:
        h.remove()


def test_invalid_path_is_rejected():
    model, rgb, depth = make(STEM)
    with pytest.raises(ValueError, match="path 0"):
        model(rgb, depth, path=0)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_present_flag_form_equals_none_form_exactly(name):
    model, rgb, depth = make(CONFIGS[name])
    shapes = model.depth_feature_shapes(batch=2)
    with torch.no_grad():
        full = model.depth_features(depth, 5)
        for path in range(6):
            eager = model.forward_trunk(rgb, [f if i < path else None for i, f in enumerate(full)])
            zeros = [f if i < path else torch.zeros(shapes[i]) for i, f in enumerate(full)]
            present = torch.tensor([1.0 if i < path else 0.0 for i in range(5)])
            flagged = model.forward_trunk(rgb, zeros, present=present)
            assert torch.equal(eager, flagged), (name, path)
            per_sample = model.forward_trunk(rgb, zeros, present=present.expand(2, 5))
            assert torch.equal(eager, per_sample)


def test_paths_really_differ():
    model, rgb, depth = make(TINY)
    with torch.no_grad():
        outs = [model(rgb, depth, path=p) for p in model.paths]
    for a, b in zip(outs, outs[1:]):
        assert not torch.allclose(a, b)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_straight_through_blend_matches_true_skipping(name):
    model, rgb, depth = make(CONFIGS[name])
    torch.manual_seed(3)
    with torch.no_grad():
        for j, path in enumerate(model.paths):
            soft = torch.softmax(torch.randn(2, len(model.paths)), dim=1)
            hard = torch.zeros_like(soft)
            hard[:, j] = 1.0
            weights = hard - soft.detach() + soft  # straight-through: 0/1 up to rounding
            blended = model.forward_blend(rgb, depth, weights)
            skipped = model(rgb, depth, path=path)
            assert (blended - skipped).abs().max().item() < 1e-5, (name, path)


def test_blend_carries_gradient_to_weights():
    model, rgb, depth = make(TINY)
    logits = torch.zeros(2, 6, requires_grad=True)
    out = model.forward_blend(rgb, depth, torch.softmax(logits, dim=1))
    out.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_blend_rejects_bad_weights():
    model, rgb, depth = make(TINY)
    with pytest.raises(ValueError, match="weights"):
        model.forward_blend(rgb, depth, torch.ones(2, 5))


@pytest.mark.parametrize("name", ["raw-zero", "stem-pass"])
def test_gate_forward_and_mixed_batch(name):
    config = CONFIGS[name]
    model, rgb, depth = make(config, batch=3)
    with torch.no_grad():
        logits, extras = model.gate_forward(rgb, depth)
        assert logits.shape == (3, len(model.paths))
        assert set(extras) == (set() if config.gate == "raw" else {"fused0", "depth0"})
        chosen = model.choose_paths(logits)
        assert all(int(p) in model.paths for p in chosen)
        auto = model(rgb, depth)
        per_sample = torch.cat([model(rgb[i:i + 1], depth[i:i + 1], path=int(chosen[i])) for i in range(3)])
        assert torch.allclose(auto, per_sample, atol=1e-5)
        weights = torch.nn.functional.one_hot(logits.argmax(1), len(model.paths)).float()
        assert torch.allclose(model.forward_blend(rgb, depth, weights, extras), auto, atol=1e-5)
        mixed = torch.tensor([model.paths[-1], model.paths[0], model.paths[-1]])
        out = model.forward_paths(rgb, depth, mixed)
        for i in range(3):
            ref = model(rgb[i:i + 1], depth[i:i + 1], path=int(mixed[i]))
            assert torch.allclose(out[i:i + 1], ref, atol=1e-5)


def test_esanet_names_and_shapes():
    model = DynMMNet(get_preset("demo"))
    sd = model.state_dict()
    for key in ("encoder_rgb.conv1.weight", "encoder_depth.layer1.0.conv1.weight", "se_layer0.se_rgb.fc.0.weight",
                "se_layer4.se_depth.fc.2.bias", "context_module.features.1.1.conv.weight",
                "context_module.final_conv.bn.running_var", "decoder.decoder_module_1.conv3x3.conv.weight",
                "decoder.decoder_module_3.decoder_blocks.0.conv3x1_1.weight", "decoder.decoder_module_2.upsample.conv.weight",
                "decoder.conv_out.weight", "decoder.upsample2.conv.bias",
                "gate.fc.weight"):
        assert key in sd, key
    assert sd["encoder_depth.conv1.weight"].shape[1] == 1
    # skip convs exist only where encoder and decoder channels differ (ESANet)
    assert not any(k.startswith("skip_layer") for k in sd)  # demo: 16/32/64 == decoder 16/32/64
    tiny = DynMMNet(TINY).state_dict()
    assert tiny["skip_layer2.0.conv.weight"].shape == (8, 16, 1, 1) and "skip_layer1.0.conv.weight" not in tiny
    stem = DynMMNet(STEM).state_dict()
    hidden = STEM.gate_channels[0]  # DynMM: 8; tiny-test: 4
    assert stem["gate.conv.0.weight"].shape == (hidden, 2 * 8, 5, 5) and stem["gate.fc.weight"].shape == (5, hidden, 1, 1)
    assert stem["gate.conv.3.weight"].shape == (hidden, hidden, 5, 5) and "gate.fc.bias" not in stem
    nbt = DynMMNet(TINY.replace(block="nbt1d")).state_dict()
    assert "encoder_rgb.layer2.0.conv1x3_2.weight" in nbt and "encoder_rgb.layer2.0.downsample.1.weight" in nbt
    # bilinear initialisation of the learned upsampling
    w = sd["decoder.upsample1.conv.weight"][0, 0]
    assert torch.allclose(w, torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16.0)


def test_ppm_fixed_pooling_and_small_maps():
    cfg = get_preset("esanet-r34-nbt1d-nyuv2").replace(width_mult=0.125, decoder_channels=(16, 8, 8),
                                                       context_pooling="fixed")
    model = DynMMNet(cfg)
    pools = [f[0] for f in model.context_module.features]
    assert all(isinstance(p, torch.nn.AvgPool2d) for p in pools)
    assert pools[0].kernel_size == (15, 20) and pools[1].kernel_size == (3, 4)
    assert not any(isinstance(m, (torch.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveMaxPool2d)) for m in model.modules())
    tiny = DynMMNet(TINY.replace(context_pooling="fixed"))  # 2x2 map: bin 5 clamps to 2
    assert tiny.context_module.features[1][0].kernel_size == (1, 1)


def test_ppm_adaptive_bins_equal_torch_adaptive_pooling():
    from dynmm_edge.model.context import AdaptiveBinPool, adaptive_bins
    assert adaptive_bins(8, 5) == [(0, 2), (1, 4), (3, 5), (4, 7), (6, 8)]
    torch.manual_seed(0)
    for h, w, n in ((15, 20, 5), (8, 10, 5), (7, 10, 5), (12, 16, 5), (2, 2, 5), (6, 8, 1), (12, 16, 8)):
        x = torch.randn(2, 3, h, w)
        got = AdaptiveBinPool((h, w), n)(x)
        want = torch.nn.AdaptiveAvgPool2d(n)(x)
        assert got.shape == want.shape == (2, 3, n, n)
        assert torch.allclose(got, want, atol=1e-6), (h, w, n)
    assert not any(isinstance(m, torch.nn.AdaptiveAvgPool2d) for m in DynMMNet(TINY).modules())


def test_bottleneck_and_nbt1d_encoders_run():
    for cfg in (TINY.replace(encoder="resnet50", block="bottleneck"), TINY.replace(encoder="resnet34", block="nbt1d")):
        model, rgb, depth = make(cfg, batch=1)
        with torch.no_grad():
            assert model(rgb, depth, path=3).shape == (1, cfg.num_classes, 64, 64)
        assert model.stage_channels[4] == model.encoder_rgb.stage_channels[4]
        assert [s[1] for s in model.depth_feature_shapes()] == list(model.stage_channels)

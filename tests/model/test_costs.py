import pytest
import torch

from dynmm_edge.model import get_preset
from dynmm_edge.model.costs import BRANCHES, branch_macs, branch_of, branch_params, cost_report, depth_path_macs, path_macs
from dynmm_edge.model.net import DynMMNet

# Published cumulative depth-encoder GMACs at 480x640 (DynMM paper / released code), paths 1..5.
PUBLISHED = {
    "dynmm-r50-nyuv2": (0.25, 4.39, 10.72, 19.72, 24.68),
    "esanet-r34-nbt1d-nyuv2": (0.25, 3.11, 6.95, 12.66, 15.54),
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_depth_path_macs_match_published_within_3_percent(name):
    depth = depth_path_macs(get_preset(name), 480, 640)
    for k, published in zip(range(1, 6), PUBLISHED[name]):
        assert abs(depth[k] / 1e9 - published) / published < 0.03, (name, k, depth[k] / 1e9, published)


def test_r50_whole_network_is_about_66_gmacs_and_stem_gate_about_012():
    b = branch_macs(get_preset("dynmm-r50-nyuv2"))
    total = path_macs(get_preset("dynmm-r50-nyuv2"), branches=b)
    assert 60e9 < total[5] < 70e9 and total[1] < total[5]
    assert 0.10e9 < b["gate"] < 0.13e9  # two 5x5 convs on 128 ch at 1/4 res


def test_hand_counted_stem_conv_and_bn():
    # R34 depth stem at 480x640: 7x7x1x64 per output, 240x320 outputs, BN 2/element, se_depth fc 64->4->64
    expected = 49 * 64 * 240 * 320 + 2 * 64 * 240 * 320 + (64 * 4 + 4) + (4 * 64 + 64)
    assert branch_macs(get_preset("esanet-r34-nbt1d-nyuv2"))["depth0"] == expected


def test_paths_are_cumulative_and_monotonic_any_size():
    cfg = get_preset("demo")
    b = branch_macs(cfg, 96, 128)
    depth = depth_path_macs(cfg, branches=b)
    total = path_macs(cfg, branches=b)
    assert depth[0] == 0
    for k in range(1, 6):
        assert depth[k] - depth[k - 1] == b[f"depth{k - 1}"] > 0
        assert total[k] == b["trunk"] + b["gate"] + depth[k]
    # MACs scale with the pixel count (all but the SE 1x1 convs on the pooled vector)
    full = branch_macs(cfg)
    assert abs(full["depth1"] - 4 * b["depth1"]) < 1e-3 * full["depth1"]
    with pytest.raises(ValueError, match="height"):
        branch_macs(cfg, 100, 128)


def test_demo_gate_cheap_and_depth_share_substantial():
    cfg = get_preset("demo")
    b = branch_macs(cfg)
    total = path_macs(cfg, branches=b)[5]
    assert b["gate"] < 0.01 * total
    assert 0.25 < depth_path_macs(cfg, branches=b)[5] / total < 0.45


def test_branch_params_cover_every_parameter():
    model = DynMMNet(get_preset("tiny-test"))
    params = branch_params(model)
    assert set(params) == set(BRANCHES)
    assert sum(params.values()) == sum(p.numel() for p in model.parameters())
    assert params["depth4"] == sum(p.numel() for n, p in model.named_parameters()
                                   if n.startswith(("encoder_depth.layer4.", "se_layer4.se_depth.")))
    assert branch_of("se_layer2.se_rgb.fc.0.weight") == "trunk" and branch_of("encoder_depth.bn1.weight") == "depth0"


def test_costs_do_not_touch_the_model():
    model = DynMMNet(get_preset("tiny-test"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = cost_report(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(report["paths"]) == {str(k) for k in model.paths}
    assert report["total_params"] == sum(p.numel() for p in model.parameters())

"""Region model: exact halos equal dense features; all tiles active == full path; masked SE; costs; errors."""
import numpy as np
import pytest
import torch

from dynmm_edge.model.config import ModelConfig
from dynmm_edge.model.net import DynMMNet
from dynmm_edge.model.presets import get_preset
from dynmm_edge.model.region import (STAGE_STRIDES, region_costs, region_depth_macs, region_forward,
                                     sparse_depth_features, stage_halo)
from dynmm_edge.tiles import TileGrid, gather, scatter


def region_net(halo="exact", height=128, width=256, seed=0):
    torch.manual_seed(seed)
    cfg = get_preset("tiny-test").replace(height=height, width=width, region_tile=32, region_halo=halo)
    net = DynMMNet(cfg).eval()
    with torch.no_grad():  # non-trivial BN statistics so zero padding and shifted windows matter
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    net.region.copy_from_dense(net)
    return net


def test_config_rejects_tile_that_does_not_divide_the_grid():
    with pytest.raises(ValueError, match="region_tile.*divides"):
        get_preset("demo").replace(region_tile=48)
    with pytest.raises(ValueError, match="region_tile.*divides"):
        get_preset("demo").replace(region_tile=128)  # 192 is not a multiple of 128
    assert ModelConfig().region_tile == 0 and DynMMNet(get_preset("tiny-test")).region is None


def test_stage_halo_is_the_receptive_field_radius():
    net = DynMMNet(get_preset("demo"))
    # layer1: max pool 3x3/2 then four 3x3 convs at 1/4 -> 4 * 2 + 1 = 9 -> 10 (even) at 1/2
    assert stage_halo(net.encoder_depth.layer1, True) == 10
    # layer2: 3x3/2 conv then three 3x3 convs at 1/8 -> 3 * 2 + 1 = 7 -> 8 at 1/4
    assert stage_halo(net.encoder_depth.layer2, False) == 8


@torch.no_grad()
def test_exact_halo_active_tiles_equal_dense_features_per_stage():
    """Given the dense input of a stage, every active tile's output equals the dense output (numpy gather)."""
    net = region_net("exact")
    g = net.region.grid
    ids = np.array([0, 3, 9, 14, 31])  # corners, edges and interior of a 4 x 8 grid
    x = net.depth_stage(0, torch.randn(1, 1, 128, 256))
    for j, i in enumerate(range(1, 5)):
        dense = net.depth_stage(i, x)
        win = gather(x.numpy(), g, ids, STAGE_STRIDES[i - 1], net.region.halos[j])
        y = net.region.tile_stage(i, torch.from_numpy(win)).numpy()
        out = scatter(y, g, ids, STAGE_STRIDES[i - 1], STAGE_STRIDES[i], net.region.halos[j])
        t = g.tile // STAGE_STRIDES[i]
        for n in ids:
            r, c = divmod(int(n), g.cols)
            sl = (0, slice(None), slice(r * t, (r + 1) * t), slice(c * t, (c + 1) * t))
            np.testing.assert_allclose(out[sl], dense.numpy()[sl], atol=1e-4)
        x = dense


@torch.no_grad()
def test_all_tiles_active_equals_full_path_with_exact_halos():
    net = region_net("exact")
    rgb, depth = torch.randn(2, 3, 128, 256), torch.randn(2, 1, 128, 256)
    full = net(rgb, depth, path=5)
    region = region_forward(net, rgb, depth, torch.ones(2, 4, 8))
    assert (region - full).abs().max().item() < 1e-4


@torch.no_grad()
def test_halo_none_differs_from_dense_and_inactive_tiles_are_zero():
    net = region_net("none")
    d0 = net.depth_stage(0, torch.randn(1, 1, 128, 256))
    mask = torch.zeros(1, 4, 8)
    mask[0, 1, 2] = 1
    feats = sparse_depth_features(net, d0, mask)
    for f, s in zip(feats, STAGE_STRIDES[1:]):
        t = 32 // s
        inside = f[..., t:2 * t, 2 * t:3 * t]
        assert inside.abs().sum() > 0
        outside = f.clone()
        outside[..., t:2 * t, 2 * t:3 * t] = 0
        assert outside.abs().max() == 0  # nothing outside the active tile
    full = sparse_depth_features(net, d0, torch.ones(1, 4, 8))
    dense = net.depth_stage(1, d0)
    assert (full[0] - dense).abs().max() > 1e-3  # seams: zero padding at tile borders


@torch.no_grad()
def test_no_active_tile_equals_the_stem_only_path():
    """Inactive tiles contribute exactly nothing: an empty mask is path 1 (depth stem only)."""
    net = region_net("none")
    rgb, depth = torch.randn(1, 3, 128, 256), torch.randn(1, 1, 128, 256)
    out = region_forward(net, rgb, depth, torch.zeros(1, 4, 8))
    assert (out - net(rgb, depth, path=1)).abs().max().item() < 1e-5


def test_costs_count_halos_and_dense_stem():
    exact, none = region_costs(region_net("exact")), region_costs(region_net("none"))
    assert none["tiles"] == 32 and none["halos"] == [0, 0, 0, 0]
    # without halos, all tiles cost exactly the dense stages 1..4 (+ SE of stages 1..4)
    full = none["full_depth_macs"]
    assert region_depth_macs(none, 32) == pytest.approx(full, rel=1e-6)
    assert exact["per_tile_macs"] > 2 * none["per_tile_macs"]
    assert region_depth_macs(none, 0) == none["dense_macs"]
    assert sum(none["per_tile_stage_macs"]) == pytest.approx(none["per_tile_macs"])


def test_region_trunk_macs_are_what_its_forward_computes():
    """The manifest's region_trunk MACs (region_costs trunk_macs) against a hook count of the trunk's forward."""
    from dynmm_edge.model.costs import _module_macs
    from dynmm_edge.model.region import region_trunk, sparse_depth_features
    net = region_net("none")
    count = [0]
    hooks = [m.register_forward_hook(lambda mod, i, o: count.__setitem__(0, count[0] + _module_macs(mod, i, o)))
             for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d))]
    rgb, depth = torch.rand(1, 3, 128, 256), torch.rand(1, 1, 128, 256)
    mask = torch.ones(1, 4, 8)
    with torch.no_grad():
        d0 = net.depth_stage(0, depth)
        sparse = sparse_depth_features(net, d0, mask)
        count[0] = 0  # only the trunk
        region_trunk(net, rgb, d0, sparse, mask)
    for h in hooks:
        h.remove()
    assert region_costs(net)["trunk_macs"] == count[0]


def test_region_forward_without_region_gate_is_a_clear_error():
    net = DynMMNet(get_preset("tiny-test")).eval()
    with pytest.raises(ValueError, match="no region gate"):
        region_forward(net, torch.zeros(1, 3, 64, 64), torch.zeros(1, 1, 64, 64), torch.ones(1, 2, 2))


def test_cue_region_gate_reads_cached_inputs_like_whole_frames_and_rejects_a_gateless_model():
    """The region stage trains the gate on cached 1/4 maps: score(inputs(x)) must be forward(x)."""
    torch.manual_seed(0)
    net = DynMMNet(get_preset("tiny-test").replace(height=64, width=128, region_tile=32, region_gate_cues=True)).eval()
    rgb, depth = torch.rand(2, 3, 64, 128), torch.rand(2, 1, 64, 128)
    gate = net.region.gate
    logits = gate(rgb, depth)
    assert logits.shape == (2, 2, 4)
    assert torch.equal(gate.score(gate.inputs(rgb, depth)), logits)
    assert gate.inputs(rgb, depth).shape == (2, 10, 16, 32)  # the 10 cue maps at 1/4
    with pytest.raises(ValueError, match="region_gate_cues.*needs a region gate"):
        get_preset("tiny-test").replace(region_gate_cues=True)


def test_branch_params_leave_the_region_head_to_the_region_branches():
    from dynmm_edge.model.costs import branch_params
    torch.manual_seed(0)
    cfg = get_preset("tiny-test").replace(height=64, width=128)
    dense, region = DynMMNet(cfg), DynMMNet(cfg.replace(region_tile=32))
    assert branch_params(region) == branch_params(dense)  # the trunk does not absorb region.*


def test_gather_and_scatter_on_torch_tensors_equal_numpy_and_stay_tensors():
    """The runtime gathers a torch backend's maps where they live: same windows and maps as numpy."""
    grid = TileGrid(32, 64, 128)
    fmap = np.random.default_rng(0).normal(size=(1, 3, 32, 64)).astype(np.float32)  # stride 2
    ids = np.array([0, 5, 6])
    for halo in (0, 4):
        win_np, win_t = gather(fmap, grid, ids, 2, halo), gather(torch.from_numpy(fmap), grid, ids, 2, halo)
        assert isinstance(win_t, torch.Tensor) and np.array_equal(win_t.numpy(), win_np)
        out_np, out_t = scatter(win_np, grid, ids, 2, 2, halo), scatter(win_t, grid, ids, 2, 2, halo)
        assert isinstance(out_t, torch.Tensor) and np.array_equal(out_t.numpy(), out_np)
    empty = gather(torch.from_numpy(fmap), grid, np.array([], np.int64), 2, 0)
    assert tuple(empty.shape) == (0, 3, 16, 16)

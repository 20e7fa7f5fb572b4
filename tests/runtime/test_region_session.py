"""Region mode through export + ONNX Runtime: all tiles == full path, partial masks == eager, policies, errors."""
import numpy as np
import pytest
import torch

from dynmm_edge.errors import DynMMError, ManifestError
from dynmm_edge.manifest import load_manifest, parse_manifest, region_spec
from dynmm_edge.model.checkpoints import default_meta
from dynmm_edge.model.net import DynMMNet
from dynmm_edge.model.presets import get_preset
from dynmm_edge.model.region import region_forward
from dynmm_edge.runtime.policy import make_policy
from dynmm_edge.backends import make_backend
from dynmm_edge.runtime.session import Session
from dynmm_edge.tiles import is_tensor

pytest.importorskip("onnxruntime")


def _net(halo):
    torch.manual_seed(0)
    cfg = get_preset("tiny-test").replace(height=64, width=128, region_tile=32, region_halo=halo)
    net = DynMMNet(cfg).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
    net.region.copy_from_dense(net)
    return net


@pytest.fixture(scope="module", params=["exact", "none"])
def exported(request, tmp_path_factory):
    from dynmm_edge.export.exporter import export_model
    net = _net(request.param)
    meta = default_meta("tiny-test")
    meta["preprocess"] = dict(meta["preprocess"], height=64, width=128)
    out = tmp_path_factory.mktemp(f"region_{request.param}") / "model"
    export_model((net, meta), out)
    return net, load_manifest(out)


def _inputs(seed=0):
    g = np.random.default_rng(seed)
    return g.normal(size=(1, 3, 64, 128)).astype(np.float32), g.normal(size=(1, 1, 64, 128)).astype(np.float32)


def test_manifest_describes_tiles_halos_buckets_and_macs(exported):
    net, m = exported
    spec = region_spec(m)
    assert (spec.tile, spec.rows, spec.cols, spec.buckets) == (32, 2, 4, (1, 2, 4, 8))
    assert [s.halo for s in spec.stages] == list(net.region.halos)
    assert spec.depth_macs(8) > spec.depth_macs(1) > spec.depth_macs(0)
    assert [t.shape[0] for t in m.branch("region_stage2").inputs] == [-1]  # dynamic tile batch


def test_all_tiles_active_equals_full_path_on_ort_for_exact_halos(exported):
    net, m = exported
    rgb, depth = _inputs()
    with Session(m, make_backend("ort", threads=1), policy="region:0.5") as s:
        out, _, _, mask = s.run_region(rgb, depth, mask=np.ones((2, 4), bool))
        full, _, _, _ = s.run_tensors(rgb, depth, path=m.full_path, return_logits=True)
    eager = region_forward(net, torch.from_numpy(rgb), torch.from_numpy(depth), torch.ones(1, 2, 4)).detach().numpy()
    assert np.abs(out["logits"] - eager).max() < 1e-4  # ORT region == eager region for every halo mode
    if m.extra["regions"]["halo_mode"] == "exact":
        assert np.abs(out["logits"] - full["logits"]).max() < 1e-4


@pytest.mark.parametrize("policy", ["region-share:0.3", "argmax"])  # bench runs explicit masks under any policy
def test_partial_mask_on_ort_equals_eager(exported, policy):
    net, m = exported
    rgb, depth = _inputs(1)
    mask = np.array([[True, False, False, True], [False, True, False, False]])
    with Session(m, make_backend("ort", threads=1), policy=policy) as s:
        out, _, ran, _ = s.run_region(rgb, depth, mask=mask)
    eager = region_forward(net, torch.from_numpy(rgb), torch.from_numpy(depth),
                           torch.from_numpy(mask[None].astype(np.float32))).detach().numpy()
    assert np.abs(out["logits"] - eager).max() < 1e-4
    assert ran[-1] == "region_trunk" and "region_stage4" in ran


def test_policies_produce_masks_and_result_carries_them(exported):
    _, m = exported
    from dynmm_edge.types import Frame
    frame = Frame(0, np.zeros((64, 128, 3), np.uint8), np.full((64, 128), 1500, np.uint16))
    with Session(m, make_backend("ort", threads=1), policy="region-share:0.25") as s:
        r = s.infer(frame)
        assert r.tile_mask.shape == (2, 4) and int(r.tile_mask.sum()) == 2 and r.active_share == 0.25
        spec = region_spec(m)
        assert r.depth_macs == pytest.approx(spec.depth_macs(2))
        assert r.depth_fraction == pytest.approx(spec.depth_macs(2) / spec.macs["full_depth_macs"])
        if spec.halo_mode == "none":
            assert r.depth_fraction < 0.5  # 2 of 8 tiles + stem + gate, no halos
        s.set_policy("region-entropy:0.5")
        r = s.infer(frame)
        assert int(r.tile_mask.sum()) == 4 and "region_gate" not in r.branches_run
        s.set_policy("region:1.0")  # nothing passes a threshold of 1: stem only
        r = s.infer(frame)
        assert r.tile_mask.sum() == 0 and "region_stage1" not in r.branches_run


def test_tile_reuse_on_a_still_frame_runs_no_tile_twice_and_changes_nothing(exported):
    """Temporal reuse: the same frame again computes no tile and gives the same logits; a tile whose depth
    moved recomputes; a tile the policy skips fuses the features it had when it last ran."""
    net, m = exported
    rgb, depth = _inputs(2)
    a = np.array([[True, False, True, False], [False, True, False, False]])
    b = np.array([[False, False, True, False], [False, True, False, True]])
    with Session(m, make_backend("ort", threads=1), policy="region:0.5,reuse=0.01") as s:
        if region_spec(m).halo_mode != "none":
            with pytest.raises(DynMMError, match="reuse needs halo-free tiles"):
                s.run_region(rgb, depth, mask=a)
            return
        first, _, ran1, comp1 = s.run_region(rgb, depth, mask=a)
        assert np.array_equal(comp1, a) and not s.region.last_reused.any() and "region_stage1" in ran1
        again, _, ran2, comp2 = s.run_region(rgb, depth, mask=a)
        assert not comp2.any() and np.array_equal(s.region.last_reused, a) and "region_stage1" not in ran2
        assert np.abs(again["logits"] - first["logits"]).max() < 1e-6
        moved = depth.copy()
        moved[..., 32:64, 96:128] += 1.0  # tile (1, 3)
        out, _, _, comp3 = s.run_region(rgb, moved, mask=b)
        assert comp3.tolist() == [[False] * 4, [False, False, False, True]]  # (0,2), (1,1) reused, (1,3) moved
        assert np.array_equal(s.region.last_reused, a)  # (0,0) is skipped by b but still fuses its features
        eager = region_forward(net, torch.from_numpy(rgb), torch.from_numpy(moved),
                               torch.from_numpy((a | b)[None].astype(np.float32))).detach().numpy()
        assert np.abs(out["logits"] - eager).max() > 1e-3  # tiles reused from the unmoved depth, not recomputed
        s.set_policy("region:0.5,reuse=0.01")  # a new policy forgets the cache
        _, _, _, comp4 = s.run_region(rgb, depth, mask=a)
        assert np.array_equal(comp4, a)


def test_tile_cache_expires_after_max_age_and_refreshes_moved_tiles():
    from dynmm_edge.runtime.region import TileCache
    from dynmm_edge.tiles import TileGrid
    grid = TileGrid(32, 64, 128)
    cache = TileCache(grid, tau=0.01, max_age=2)
    depth = np.zeros((1, 1, 64, 128), np.float32)
    keep = np.zeros((2, 4), bool)
    keep[0, 0] = True
    computed = []
    for i in range(6):
        sig = cache.signature(depth)
        compute, reuse = cache.plan(keep, sig)
        feats = {"f": np.full((1, 2, 4, 8), float(i), np.float32)} if compute.any() else {}
        out = cache.update(feats, ["f"], compute, reuse, sig)
        computed.append(int(compute.sum()))
        assert out["f"][0, :, 0:2, 0:2].min() == (i // 3) * 3  # a reused tile carries the features it ran with
    assert computed == [1, 0, 0, 1, 0, 0]  # ran, reused twice, too old: ran again
    depth[..., 0:32, 0:32] += 0.5  # the tile's depth moved: recompute at once
    compute, _ = cache.plan(keep, cache.signature(depth))
    assert compute[0, 0]


@pytest.mark.parametrize("spec,msg", [("region:1.5", r"threshold must be in \[0, 1\]"),
                                      ("region-share:-0.1", r"tile share must be in \[0, 1\]"),
                                      ("region:abc", "expected a number"),
                                      ("region:0.5,reuse=-1", "reuse must be a depth change >= 0"),
                                      ("region:0.5,reuse=x", "reuse needs a number"),
                                      ("region:0.5,ruse=0.1", "unknown option 'ruse=0.1'"),
                                      ("region:0.5,reuse=0.1,max_age=0", "max_age must be >= 1")])
def test_bad_region_policy_is_a_one_line_error(spec, msg):
    with pytest.raises(DynMMError, match=msg) as exc:
        make_policy(spec)
    assert "\n" not in str(exc.value)


def test_region_policy_on_a_model_without_region_gate(tmp_path):
    from dynmm_edge.export.exporter import export_model
    m = export_model("tiny-test", tmp_path / "plain")
    assert region_spec(m) is None  # old-style manifests still load
    with pytest.raises(DynMMError, match="has no region gate"):
        Session(m, make_backend("ort", threads=1), policy="region:0.5")


def test_bad_regions_section_is_rejected(exported):
    import json
    _, m = exported
    data = json.loads((m.folder / "manifest.json").read_text())
    data["regions"]["tile"] = 48
    with pytest.raises(ManifestError, match="regions.tile 48"):
        parse_manifest(data, m.folder)
    data = json.loads((m.folder / "manifest.json").read_text())
    data["regions"]["buckets"] = [4, 2]
    with pytest.raises(ManifestError, match="buckets"):
        parse_manifest(data, m.folder)


def test_torch_backend_runs_region_mode(exported):
    pytest.importorskip("torch")
    net, m = exported
    rgb, depth = _inputs(2)
    mask = np.array([[False, True, True, False], [True, False, False, False]])
    backend = make_backend("torch")
    downloaded = []
    real_download = backend.download
    backend.download = lambda x: downloaded.append(tuple(x.shape)) or real_download(x)
    with Session(m, backend, policy="region-share:0.5") as s:
        out, _, ran, _ = s.run_region(rgb, depth, mask=mask)
        # tiles are gathered and scattered on the tensors where they live: no feature map to the host,
        # only the trunk's labels and logits (the mask was given, so not even the gate's logits)
        assert downloaded == [(1, 64, 128), (1, 8, 64, 128)] and "region_stage4" in ran
        if region_spec(m).halo_mode == "none":  # reuse (halo-free tiles only) keeps its cache there too
            downloaded.clear()
            s.set_policy("region:0.0,reuse=0.01")  # every tile, then every tile reused
            s.run_region(rgb, depth)
            s.run_region(rgb, depth)
            assert downloaded == [(1, 2, 4), (1, 64, 128), (1, 8, 64, 128)] * 2
            assert s.region.last_reused.all() and all(is_tensor(v) for v in s.region.cache.maps.values())
    eager = region_forward(net, torch.from_numpy(rgb), torch.from_numpy(depth),
                           torch.from_numpy(mask[None].astype(np.float32))).detach().numpy()
    assert np.abs(np.asarray(out["logits"]) - eager).max() < 1e-4


def test_region_results_follow_labels_at_and_the_plan_binds_region_zeros(exported):
    _, m = exported
    from dynmm_edge.runtime.plan import ExecutionPlan
    from dynmm_edge.types import Frame
    plan = ExecutionPlan.from_manifest(m)
    assert plan.region.branches == ("region_gate", "depth0", "region_stage1", "region_stage2", "region_stage3",
                                    "region_stage4", "region_trunk")
    assert sorted(plan.region.zero_features) == [f"region_feat_{i}" for i in range(1, 5)]
    assert all("region" not in b for p in plan.paths.values() for b in p.branches)  # no gate path runs them
    g = np.random.default_rng(3)
    frame = Frame(0, g.integers(0, 255, (128, 256, 3), dtype=np.uint8), np.full((128, 256), 1500, np.uint16))
    with Session(m, make_backend("ort", threads=1), policy="region-share:0.25") as s:
        r = s.infer(frame)  # camera frame 2x the model input: labels at camera resolution, same tile grid
        assert r.labels.shape == (128, 256) and r.tile_mask.shape == (2, 4) and r.tile_size == 32
        s.labels_at = "model"
        small = s.infer(frame)
        assert small.labels.shape == (64, 128)
        assert np.array_equal(r.labels[::2, ::2], small.labels)  # nearest upsampling of the same labels
        s.set_policy("region:1.0")  # no tile: every region feature comes from the bound zeros
        assert s.infer(frame).branches_run == ("region_gate", "depth0", "region_trunk")
    assert s.region is None and s.runners == {}

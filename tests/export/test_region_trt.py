"""Tile-batch region engines: the TensorRT static check accepts them and they build against the
TensorRT 8.5 / 10 / 11 fakes with an optimisation profile that spans the manifest's buckets."""
import pytest
import torch

pytest.importorskip("onnx")

from dynmm_edge.export import trt_build as tb  # noqa: E402
from dynmm_edge.export.trt_check import check_model  # noqa: E402
from dynmm_edge.manifest import region_spec  # noqa: E402
from tests.fakes import fake_tensorrt  # noqa: E402

GPU = {"name": "Fake Orin", "compute_capability": "8.7"}


@pytest.fixture(scope="module")
def region_model(tmp_path_factory):
    from dynmm_edge.export.exporter import export_model
    from dynmm_edge.model.checkpoints import default_meta
    from dynmm_edge.model.net import DynMMNet
    from dynmm_edge.model.presets import get_preset

    torch.manual_seed(0)
    cfg = get_preset("tiny-test").replace(height=64, width=128, region_tile=32, region_gate_cues=True)
    net = DynMMNet(cfg).eval()
    meta = default_meta("tiny-test")
    meta["preprocess"] = dict(meta["preprocess"], height=64, width=128)
    return export_model((net, meta), tmp_path_factory.mktemp("rt") / "model")


def test_static_check_accepts_every_region_graph(region_model):
    names = [b.name for b in region_model.branches if b.kind == "region"]
    assert names == ["region_gate", "region_stage1", "region_stage2", "region_stage3", "region_stage4", "region_trunk"]
    for b in region_model.branches:
        assert check_model(region_model.file_path(b), b.name) == []


def test_tile_profile_spans_the_buckets():
    from dynmm_edge.tiles import tile_batch_range
    assert tile_batch_range((1, 2, 4, 8, 16, 32, 48)) == (1, 16, 48)  # 30 % of 48 tiles = 14 -> bucket 16


@pytest.mark.parametrize("version", ["8.5.3", "10.3.0", "11.4.0"])
def test_tile_engines_build_with_profiles(region_model, tmp_path, version):
    trt = fake_tensorrt.make_fake_trt(version)
    spec = region_spec(region_model)
    profile = tb.BatchProfile(*spec.tile_batch_range())  # what the TensorRT backend builds with
    for st in spec.stages:
        b = region_model.branch(st.branch)
        path = tb.build_engine(region_model.file_path(b), "fp32", trt_module=trt, cache_dir=tmp_path / "eng",
                               profile=profile, gpu=GPU, branch=b.name)
        assert path.is_file()
        shape = tuple(b.inputs[0].shape[1:])
        got = trt._state["configs"][-1].profiles[0].get_shape(st.input)
        assert [tuple(s) for s in got] == [(1,) + shape, (profile.opt,) + shape, (spec.count,) + shape]


def test_tensorrt_backend_uses_the_bucket_profile_for_tile_engines(region_model, tmp_path):
    from dynmm_edge.backends.cuda_buffers import HostDevice
    from dynmm_edge.backends.tensorrt import TensorRTBackend

    trt = fake_tensorrt.make_fake_trt("10.3.0")
    be = TensorRTBackend(device=HostDevice(), trt_module=trt, cache_dir=tmp_path / "eng", builder=tb.build_engine)
    stage = region_model.branch("region_stage3")
    be.engine_for(stage, region_model)
    shape = tuple(stage.inputs[0].shape[1:])
    got = [tuple(s) for s in trt._state["configs"][-1].profiles[0].get_shape("tile_in_3")]
    assert got == [(1,) + shape, (2,) + shape, (8,) + shape]  # 8 tiles: 30 % = 2.4 -> bucket 2

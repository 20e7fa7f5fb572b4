"""Shared fixtures: one exported tiny model per session, small synthetic frames."""
import os
import signal

import numpy as np
import pytest

os.environ.setdefault("DYNMM_EDGE_CACHE", os.path.join(os.path.dirname(__file__), "..", ".pytest_cache", "dynmm_cache"))

# A test run started as a background job of a non-interactive shell (`bash .ci/run &`, nohup in a
# script) inherits SIGINT IGNORED, and so do the CLI processes the tests start: Ctrl-C tests then wait
# forever for an interrupt that never comes. The tests are about Ctrl-C as a terminal delivers it, so
# the session restores Python's own handler (children started from here get the default disposition).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _torch():
    try:
        import torch
        torch.set_num_threads(1)
        return torch
    except ImportError:
        return None


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """(net, meta, manifest) of the 'tiny-test' preset exported once (random weights, seed 0)."""
    torch = _torch()
    if torch is None:
        pytest.skip("torch not installed: exporting needs it")
    from dynmm_edge.export.exporter import export_model
    from dynmm_edge.model.checkpoints import load_model
    torch.manual_seed(0)
    net, meta = load_model("tiny-test")
    _randomise_bn(net, torch)
    out = tmp_path_factory.mktemp("tiny") / "model"
    manifest = export_model((net, meta), out)
    return net, meta, manifest


def _randomise_bn(net, torch):
    """Non-trivial BN statistics so exported graphs are checked on realistic numbers."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    net.eval()


@pytest.fixture
def rgbd_frame():
    """A deterministic 80x96 frame with a few invalid depth pixels."""
    from dynmm_edge.types import Frame
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)
    depth = rng.integers(500, 5000, (80, 96)).astype(np.uint16)
    depth[:5, :5] = 0
    return Frame(frame_id=7, rgb=rgb, depth=depth, depth_scale_m=0.001)

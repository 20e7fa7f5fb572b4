"""The shipped demo model folder: valid, and its branches reproduce the eager model on real frames."""
import numpy as np
import pytest

from dynmm_edge.paths import DEMO_MODEL

pytestmark = pytest.mark.skipif(not (DEMO_MODEL / "manifest.json").is_file(), reason="demo model not shipped")


def test_manifest_valid_and_checkpoint_is_the_folders():
    from dynmm_edge.manifest import load_manifest, sha256_file
    m = load_manifest(DEMO_MODEL)  # verifies every hash
    assert (m.height, m.width) == (192, 256) and m.path_values == (0, 1, 2, 3, 4, 5)
    assert m.extra["checkpoint"]["sha256"] == sha256_file(DEMO_MODEL / "model.pt")
    assert len(m.classes) == 8 and m.gate["trained"] is True


@pytest.mark.parametrize("backend", ["ort", "torch"])
def test_every_path_matches_eager_on_100_percent_of_pixels(backend):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from dynmm_edge.data.preprocess import PreprocessConfig, preprocess
    from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld
    from dynmm_edge.model.checkpoints import load_checkpoint
    from dynmm_edge.backends import make_backend
    from dynmm_edge.runtime.session import Session
    from dynmm_edge.manifest import load_manifest
    torch.set_num_threads(1)
    m = load_manifest(DEMO_MODEL)
    net, _ = load_checkpoint(DEMO_MODEL / "model.pt")
    cfg = PreprocessConfig.from_dict(m.preprocess)
    world = SyntheticWorld(SynthConfig(width=320, height=240, hard_fraction=0.5, seed=31))
    with Session(m, make_backend(backend, threads=1)) as s:
        for i in range(2):
            f = world.frame(i)
            rgb, depth = preprocess(f.rgb, f.depth, 0.001, cfg)
            for k in m.path_values:
                out, _, _, _ = s.run_tensors(rgb, depth, path=k, return_logits=True)
                with torch.no_grad():
                    ref = net(torch.from_numpy(rgb), torch.from_numpy(depth), path=k)
                assert np.abs(out["logits"] - ref.numpy()).max() < 1e-4, (i, k)
                assert np.array_equal(out["labels"][0], ref.argmax(1)[0].numpy()), (i, k)

"""dynmm_edge.testing is shipped for users' tests, so its doubles are tested as products here."""
import numpy as np

from dynmm_edge.io.base import FrameSource
from dynmm_edge.testing import FakeClock, FakeLiveSource, manifest_for
from dynmm_edge.types import Frame


def _frame(i):
    return Frame(i, np.zeros((12, 16, 3), np.uint8), np.zeros((12, 16), np.uint16))


def test_fake_live_source_is_a_live_frame_source():
    fake = FakeLiveSource(_frame, num_frames=5, fps=1000)
    assert isinstance(fake, FrameSource) and fake.live
    with fake:
        ids = [f.frame_id for f in fake]
    assert ids == [0, 1, 2, 3, 4] and fake.produced == 5 and fake.closed and fake.size == (16, 12)


def test_fake_clock_advances_only_when_told():
    clk = FakeClock(2.0)
    assert clk() == 2.0 and clk.advance(0.5) == 2.5 and clk() == 2.5


def test_manifest_for_resolves_files_inside_the_folder(tmp_path):
    from dynmm_edge.manifest import Branch, Variant
    from dynmm_edge.tensors import TensorSpec
    b = Branch(name="gate", kind="gate", inputs=(TensorSpec("x", (1,)),), outputs=(TensorSpec("y", (1,)),),
               variants={"fp32": Variant("g.onnx", "0" * 64)})
    m = manifest_for(tmp_path, [b])
    assert m.file_path(b, "fp32") == (tmp_path / "g.onnx").resolve() and m.paths == {0: ("gate",)}

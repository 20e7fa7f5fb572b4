"""Small realsense-ros-shaped bags, written once per test module with the project's own writer."""
import pytest

pytest.importorskip("rosbags", reason="rosbags not installed (pip install 'dynmm-edge[ros]')")


def synth_frames(n, width=64, height=48, seed=0):
    from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld
    world = SyntheticWorld(SynthConfig(width=width, height=height, seed=seed))
    return [sf.to_frame() for sf in world.sequence(n, start=0, motion="walk", fps=30.0)]


@pytest.fixture
def make_bag(tmp_path):
    """make_bag(name, n=4, **write_camera_bag options) -> bag folder."""
    from dynmm_edge.io.rosbag2 import write_camera_bag

    def make(name, n=4, width=64, height=48, frames=None, **kw):
        out = tmp_path / name
        write_camera_bag(out, frames if frames is not None else synth_frames(n, width, height), **kw)
        return out
    return make

import argparse

import numpy as np
import pytest

from dynmm_edge._lazy import available
from dynmm_edge.apps import synth_cmd


def _parse(argv):
    parser = argparse.ArgumentParser(prog="dynmm-edge")
    sub = parser.add_subparsers(dest="command")
    synth_cmd.add_parser(sub)
    return parser.parse_args(["synth", *argv])


@pytest.mark.skipif(not available("cv2"), reason="opencv-python not installed")
def test_synth_dir(tmp_path, capsys):
    args = _parse(["-o", str(tmp_path), "--frames", "6", "--size", "32x24", "--hard-fraction", "0.5",
                   "--seed", "1", "--split", "test"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "wrote 6 frames 32x24" in out and "camouflaged" in out
    from dynmm_edge.data.datasets import DirectoryDataset
    ds = DirectoryDataset(tmp_path, "test", num_classes=8)
    assert len(ds) == 6 and ds[0].rgb.shape == (24, 32, 3)


@pytest.mark.skipif(not available("pyrealsense2"), reason="pyrealsense2 cannot be imported")
def test_synth_db3(tmp_path, capsys):
    out = tmp_path / "s.db3"
    args = _parse(["-o", str(out), "--frames", "5", "--size", "32x24", "--format", "db3", "--motion", "still"])
    assert args.func(args) == 0
    from dynmm_edge.io.realsense import read_recording
    back = read_recording(out)
    assert len(back) == 5 and all(np.array_equal(back[0].labels, f.labels) for f in back)


def test_synth_bad_args(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _parse(["-o", str(tmp_path), "--size", "32by24"])
    args = _parse(["-o", str(tmp_path / "x.bag"), "--frames", "2", "--size", "16x12", "--format", "db3"])
    assert args.func(args) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # refused by argparse, before any frame is made
        _parse(["-o", str(tmp_path), "--frames", "2", "--hard-fraction", "2"])
    assert exc.value.code == 2
    assert "--hard-fraction: 2 must be in [0, 1]" in capsys.readouterr().err

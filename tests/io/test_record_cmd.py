"""`dynmm-edge record`: any source -> .db3 (+ labels sidecar), limits, errors."""
import argparse

import numpy as np
import pytest

from dynmm_edge._lazy import available

pytestmark = pytest.mark.skipif(not available("pyrealsense2"), reason="pyrealsense2 (and libusb) not installed")


def _parse(argv):
    from dynmm_edge.apps import record_cmd
    parser = argparse.ArgumentParser()
    record_cmd.add_parser(parser.add_subparsers(dest="cmd"))
    return parser.parse_args(argv)


def test_record_synthetic_frames_then_play_back(tmp_path, capsys):
    from dynmm_edge.io.sources import open_source
    out = tmp_path / "syn.db3"
    args = _parse(["record", "--source", "synthetic://?frames=20&width=64&height=48&motion=still",
                   "-o", str(out), "--frames", "6"])
    assert args.func(args) == 0
    assert "wrote 6 frames" in capsys.readouterr().out
    assert out.is_file() and (tmp_path / "syn.db3.labels.npz").is_file()
    with open_source("synthetic://?frames=6&width=64&height=48&motion=still") as src:
        expected = list(src)
    with open_source(out) as src:
        got = list(src)
    assert len(got) == 6
    for e, g in zip(expected, got):
        assert np.array_equal(e.rgb, g.rgb) and np.array_equal(e.depth, g.depth)
        assert np.array_equal(e.labels, g.labels)


def test_record_seconds_limit_and_bad_output(tmp_path, capsys):
    out = tmp_path / "live.db3"
    args = _parse(["record", "--source", "synthetic://?frames=0&width=32&height=24&live=1&fps=50",
                   "-o", str(out), "--seconds", "0.2", "--quiet"])
    assert args.func(args) == 0
    n = int(capsys.readouterr().out.split()[1])
    assert 5 <= n <= 15 and out.is_file()
    args = _parse(["record", "--source", "synthetic://?frames=2", "-o", str(tmp_path / "x.bag")])
    assert args.func(args) == 2 and ".db3" in capsys.readouterr().err
    args = _parse(["record", "--source", "synthetic://?frames=2&nope=1", "-o", str(tmp_path / "y.db3")])
    assert args.func(args) == 1 and "nope" in capsys.readouterr().err
    assert not (tmp_path / "y.db3").exists()


@pytest.mark.parametrize("sig,name", [("SIGINT", "Ctrl-C"), ("SIGTERM", "SIGTERM")])
def test_record_ctrl_c_stops_cleanly_and_keeps_frames(tmp_path, capsys, sig, name):
    import os
    import signal
    import threading
    sig = getattr(signal, sig)
    out = tmp_path / "cc.db3"
    args = _parse(["record", "--source", "synthetic://?frames=0&width=32&height=24&live=1&fps=40", "-o", str(out)])
    threading.Timer(0.3, lambda: os.kill(os.getpid(), sig)).start()
    assert args.func(args) == 128 + sig  # the file is whole, but scripts can tell it was interrupted
    text = capsys.readouterr().out
    assert f"stopped by {name}" in text and out.is_file()
    n = int(text.split()[1])
    assert n >= 3
    from dynmm_edge.io.sources import open_source
    with open_source(out) as src:
        assert len(list(src)) == n
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

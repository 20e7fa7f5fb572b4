"""`run` stopped by a signal keeps every output whole and consistent; bad frames are counted."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.faults.conftest import litter, run_cli


def _decoded_frames(path) -> int:
    import cv2
    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while cap.read()[0]:
            n += 1
    finally:
        cap.release()
    return n


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_during_run_keeps_video_jsonl_and_summary_consistent(tiny_export, tmp_path, sig):
    pytest.importorskip("cv2")
    model = tiny_export[2].folder
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "dynmm_edge.apps.cli", "run", str(model),
           "--source", "synthetic://?frames=100000&width=64&height=64",
           "--sink", str(out / "o.mp4"), "--sink", f"jsonl://{out / 'o.jsonl'}", "--json", str(out / "s.json")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        rows = 0
        while rows < 5:  # stop it mid-stream, once frames are flowing
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
            partial = list(out.glob(".o.jsonl.*.partial.jsonl"))
            rows = len(partial[0].read_text().splitlines()) if partial else 0
            time.sleep(0.1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and f"interrupted after" in err
    summary = json.loads((out / "s.json").read_text())
    lines = (out / "o.jsonl").read_text().splitlines()
    assert summary["stop_reason"] == "interrupted" and summary["exit_code"] == 128 + sig
    assert summary["frames"] >= 5
    assert len(lines) == summary["frames"] == _decoded_frames(out / "o.mp4")
    assert [json.loads(x)["frame_id"] for x in lines] == list(range(summary["frames"]))
    assert summary["frames_in"] == summary["frames"] + summary["dropped"]
    assert litter(out) == []


def _frames_folder(root, n, bad=()):
    import cv2
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    for i in range(n):
        cv2.imwrite(str(root / "rgb" / f"{i:04d}.png"), np.full((64, 64, 3), 20 * i, np.uint8))
        cv2.imwrite(str(root / "depth" / f"{i:04d}.png"), np.full((64, 64), 1000 + i, np.uint16))
    for i in bad:
        (root / "rgb" / f"{i:04d}.png").write_bytes(b"\x89PNG cut short")
    return root


def test_bad_frames_skipped_and_counted(tiny_export, tmp_path, capsys):
    pytest.importorskip("cv2")
    src = _frames_folder(tmp_path / "frames", 6, bad=(1, 4))
    rc, out, err = run_cli(["run", tiny_export[2].folder, "--source", src, "--sink", f"jsonl://{tmp_path / 'r.jsonl'}",
                            "--json", tmp_path / "s.json"], capsys)
    assert rc == 0, err
    s = json.loads((tmp_path / "s.json").read_text())
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert s["frames"] == 4 and s["bad_frames"] == 2 and s["stop_reason"] == "end"
    assert [r["frame_id"] for r in rows] == [0, 2, 3, 5]
    assert [r["bad_frames"] for r in rows] == [0, 1, 1, 2]  # bad frames seen before each row


def test_bad_frame_stop_still_writes_frames_already_read(tiny_export, tmp_path, capsys):
    pytest.importorskip("cv2")
    src = _frames_folder(tmp_path / "frames", 6, bad=(3,))
    rc, out, err = run_cli(["run", tiny_export[2].folder, "--source", src, "--on-bad-frame", "stop",
                            "--sink", tmp_path / "o.mp4", "--sink", f"jsonl://{tmp_path / 'r.jsonl'}",
                            "--json", tmp_path / "s.json"], capsys)
    assert rc == 1 and "0003.png: unreadable or not an image" in err and "Traceback" not in err
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["frames"] == 3 and s["bad_frames"] == 1 and s["stop_reason"] == "bad_frame"
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 3 == _decoded_frames(tmp_path / "o.mp4")


def test_failed_run_keeps_existing_jsonl(tiny_export, tmp_path, capsys):
    """The old file is replaced only by a finished run: a run that fails at start leaves it alone."""
    old = tmp_path / "r.jsonl"
    old.write_text('{"frame_id": 0}\n')
    rc, out, err = run_cli(["run", tiny_export[2].folder, "--source", "synthetic://?frames=2&width=64&height=64",
                            "--sink", f"jsonl://{old}", "--sink", "rtsp://nowhere"], capsys)
    assert rc == 1 and old.read_text() == '{"frame_id": 0}\n' and litter(tmp_path) == []

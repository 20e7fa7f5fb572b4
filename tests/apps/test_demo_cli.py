"""`dynmm-edge demo` and the CLI surface."""
import json

import pytest


def test_demo_writes_video_stats_and_summary(tmp_path, tiny_export, capsys):
    pytest.importorskip("pyrealsense2")
    cv2 = pytest.importorskip("cv2")
    from dynmm_edge.apps.cli import main
    _, _, m = tiny_export
    out = tmp_path / "demo"
    rc = main(["demo", "--model", str(m.folder), "--frames", "6", "--out", str(out), "--threads", "1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "frames: 6" in text and "mIoU vs labels" in text and "depth skipped" in text
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["frames"] == 6 and summary["dropped"] == 0
    assert sum(summary["path_histogram"].values()) == 6
    assert 0 <= summary["depth_skip_share"] <= 1
    assert len((out / "demo_stats.jsonl").read_text().splitlines()) == 6
    cap = cv2.VideoCapture(str(out / "demo_overlay.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 6
    # no temp file left behind: atomic writes use '.NAME.*.tmp', the video sink '.NAME.*.partial.mp4'
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") or ".partial" in p.name]


def test_every_command_has_help(capsys):
    from dynmm_edge.apps.cli import COMMANDS, main
    for name in COMMANDS:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert f"dynmm-edge {name}" in capsys.readouterr().out


def test_unknown_option_is_an_error(capsys):
    from dynmm_edge.apps.cli import main
    with pytest.raises(SystemExit) as e:
        main(["run", "demo", "--source", "x", "--no-such-flag"])
    assert e.value.code == 2

"""Bad input and faults through the real CLI (in-process): each case asserts the exit code, a one-line
message naming the culprit, no traceback, no existing file damaged, and no temp/lock litter."""
import errno
import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest

from tests.faults.conftest import litter, run_cli, tree_hashes

SRC = "synthetic://?frames=3&width=64&height=64"
POLICY_XFAIL = pytest.mark.xfail(strict=True, reason="policy.py validation lands with issue 12")


@dataclass
class Ctx:
    tmp: Path
    model: Path
    protect: list = field(default_factory=list)  # files/folders that must come out byte-identical


@dataclass
class Case:
    id: str
    argv: Callable[[Ctx], list]
    code: int
    match: str
    setup: Optional[Callable] = None  # (ctx, monkeypatch) -> None
    marks: tuple = ()


def _edit_manifest(ctx, fn):
    p = ctx.model / "manifest.json"
    d = json.loads(p.read_text())
    fn(d)
    p.write_text(json.dumps(d))


def _existing(ctx, name, text="precious\n"):
    p = ctx.tmp / name
    p.write_text(text)
    ctx.protect.append(p)
    return p


def _a_file(ctx):
    """A regular file used where a folder is expected (works as root, unlike chmod 0555)."""
    p = ctx.tmp / "not_a_dir"
    p.write_text("x")
    ctx.protect.append(p)
    return p


def _depth8_folder(ctx, bad_png=False):
    import cv2
    root = ctx.tmp / "frames"
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    for i in range(3):
        cv2.imwrite(str(root / "rgb" / f"{i:04d}.png"), np.full((64, 64, 3), 40 * i, np.uint8))
        depth = np.full((64, 64), 100 + i, np.uint8 if not bad_png else np.uint16)
        cv2.imwrite(str(root / "depth" / f"{i:04d}.png"), depth)
    if bad_png:
        (root / "rgb" / "0001.png").write_bytes(b"\x89PNG truncated")
    ctx.protect.append(root)
    return root


def _enospc_jsonl(ctx, monkeypatch):
    from dynmm_edge.io import sinks

    class FullDisk:
        def __init__(self, fh):
            self.fh, self.lines = fh, 0

        def write(self, text):
            self.lines += 1
            if self.lines > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.fh.write(text)

        def __getattr__(self, name):
            return getattr(self.fh, name)

    real = sinks.JsonlSink.__init__

    def init(self, *a, **k):
        real(self, *a, **k)
        self._fh = FullDisk(self._fh)

    monkeypatch.setattr(sinks.JsonlSink, "__init__", init)
    _existing(ctx, "stats.jsonl", '{"frame_id": 0}\n')


def _short_video(ctx, monkeypatch):
    """OpenCV's writer silently drops frames when the disk fills: simulate with a writer that stops."""
    import cv2
    real = cv2.VideoWriter

    class Dropping:
        def __init__(self, *a):
            self.w, self.n = real(*a), 0

        def write(self, img):
            self.n += 1
            if self.n <= 1:
                self.w.write(img)

        def __getattr__(self, name):
            return getattr(self.w, name)

    monkeypatch.setattr(cv2, "VideoWriter", Dropping)
    _existing(ctx, "out.mp4", "an older video\n")


def _lock(ctx, target):
    """Another process holds the writer's lock on `target` (a child keeps it for the test)."""
    import subprocess
    import sys
    code = ("import sys, time; from dynmm_edge.folder_commit import folder_lock\n"
            "with folder_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    ctx.children = getattr(ctx, "children", []) + [proc]


def _no_torch(ctx, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "torch", None)  # a runtime-only install


def _run(*extra):
    return lambda c: ["run", c.model, "--source", SRC, *extra]


CASES = [
    # --- numeric flags: argparse refuses them before anything is loaded (exit 2)
    Case("run-max-frames-0", _run("--max-frames", "0"), 2, "--max-frames: 0 must be >= 1"),
    Case("run-max-frames-neg", _run("--max-frames", "-3"), 2, "--max-frames: -3 must be >= 1"),
    Case("run-queue-0", _run("--queue", "0"), 2, "--queue: 0 must be >= 1"),
    Case("run-alpha-nan", _run("--alpha", "nan"), 2, "--alpha: 'nan' must be a finite number"),
    Case("run-alpha-range", _run("--alpha", "1.5"), 2, "--alpha: 1.5 must be in [0, 1]"),
    Case("run-threads-0", _run("--threads", "0"), 2, "--threads: 0 must be >= 1"),
    Case("run-bad-frame-mode", _run("--on-bad-frame", "ignore"), 2, "--on-bad-frame: invalid choice"),
    Case("bench-frames-neg", lambda c: ["bench", c.model, "--frames", "-1"], 2, "--frames: -1 must be >= 1"),
    Case("bench-frames-nan", lambda c: ["bench", c.model, "--frames", "nan"], 2, "--frames: 'nan' is not an integer"),
    Case("bench-fps-inf", lambda c: ["bench", c.model, "--fps", "inf"], 2, "--fps: 'inf' must be a finite number"),
    Case("bench-block-0", lambda c: ["bench", c.model, "--block", "0"], 2, "--block: 0 must be >= 1"),
    Case("export-size-0", lambda c: ["export", "tiny-test", "-o", c.tmp / "x", "--size", "64x0"], 2,
         "--size: height 0 in '64x0' must be >= 1"),
    Case("export-size-33", lambda c: ["export", "tiny-test", "-o", c.tmp / "x", "--size", "64x33"], 2,
         "--size: height 33 in '64x33' is not a multiple of 32"),
    Case("export-size-240", lambda c: ["export", "tiny-test", "-o", c.tmp / "x", "--size", "320x240"], 2,
         "--size: height 240 in '320x240' is not a multiple of 32"),
    Case("export-size-width-neg", lambda c: ["export", "tiny-test", "-o", c.tmp / "x", "--size=-32x64"], 2,
         "--size: width -32 in '-32x64' must be >= 1"),
    Case("export-size-not-wxh", lambda c: ["export", "tiny-test", "-o", c.tmp / "x", "--size", "640"], 2,
         "--size: '640' is not WxH"),
    # the hidden old spellings are checked the same way
    Case("export-height-alias-33", lambda c: ["export", "tiny-test", "-o", c.tmp / "x", "--height", "33"], 2,
         "--height: 33 is not a multiple of 32"),
    Case("export-width-alias-neg", lambda c: ["export", "tiny-test", "-o", c.tmp / "x", "--width", "-32"], 2,
         "--width: -32 must be >= 1"),
    Case("synth-fps-0", lambda c: ["synth", "-o", c.tmp / "s", "--fps", "0"], 2, "--fps: 0 must be >= 1"),
    Case("synth-frames-0", lambda c: ["synth", "-o", c.tmp / "s", "--frames", "0"], 2, "--frames: 0 must be >= 1"),
    Case("synth-hard-nan", lambda c: ["synth", "-o", c.tmp / "s", "--hard-fraction", "nan"], 2,
         "--hard-fraction: 'nan' must be a finite number"),
    Case("calibrate-frames-0", lambda c: ["calibrate", c.model, "--source", SRC, "--frames", "0"], 2,
         "--frames: 0 must be >= 1"),
    Case("calibrate-percentile-0", lambda c: ["calibrate", c.model, "--source", SRC, "--percentile", "0"], 2,
         "--percentile: 0 must be in (0, 100]"),
    Case("calibrate-data-alias-pool-0", lambda c: ["calibrate", c.model, "--data", SRC, "--pool", "0"], 2,
         "--pool: 0 must be >= 1"),  # the alias' deprecation note is not a second error line
    Case("record-seconds-neg", lambda c: ["record", "--source", SRC, "-o", c.tmp / "r.db3", "--seconds", "-1"], 2,
         "--seconds: -1 must be > 0"),
    Case("train-lr-nan", lambda c: ["train", "-o", c.tmp / "t", "--lr", "nan"], 2, "--lr: 'nan' must be a finite number"),
    Case("train-batch-0", lambda c: ["train", "--batch-size", "0"], 2, "--batch-size: 0 must be >= 1"),
    Case("info-size-100", lambda c: ["info", "tiny-test", "--size", "100x64"], 2,
         "--size: width 100 in '100x64' is not a multiple of 32 (try 96)"),
    Case("info-height-alias-100", lambda c: ["info", "tiny-test", "--height", "100"], 2,
         "--height: 100 is not a multiple of 32"),
    # --- policies (validated in runtime/policy.py by issue 12)
    Case("policy-bias-nan", _run("--policy", "bias:nan"), 1, "bias", marks=(POLICY_XFAIL,)),
    Case("policy-bias-inf", _run("--policy", "bias:-inf"), 1, "bias", marks=(POLICY_XFAIL,)),
    Case("policy-budget-ms-neg", _run("--policy", "budget-ms:-5"), 1, "budget", marks=(POLICY_XFAIL,)),
    Case("policy-hysteresis-neg", _run("--policy", "hysteresis:-1"), 1, "hysteresis", marks=(POLICY_XFAIL,)),
    Case("policy-unknown", _run("--policy", "greedy"), 1, "unknown policy 'greedy'"),
    # --- model folder problems (exit 1, folder untouched)
    Case("manifest-preprocess-height-0", _run(), 1, "preprocess.height must be a positive integer, got 0",
         setup=lambda c, m: _edit_manifest(c, lambda d: d["preprocess"].update(height=0))),
    Case("manifest-input-height-abc", _run(), 1, "input.height must be a positive integer, got 'abc'",
         setup=lambda c, m: _edit_manifest(c, lambda d: d["input"].update(height="abc"))),
    Case("manifest-depth-std-nan", _run(), 1, "preprocess.depth_std is nan; it must be finite",
         setup=lambda c, m: _edit_manifest(c, lambda d: d["preprocess"].update(depth_std=float("nan")))),
    Case("manifest-checkpoint-escape", _run(), 1, "checkpoint: file path '../model.pt' leaves the model folder",
         setup=lambda c, m: _edit_manifest(c, lambda d: d["checkpoint"].update(file="../model.pt"))),
    Case("manifest-checkpoint-hash", _run(), 1, "checkpoint model.pt: sha256 is",
         setup=lambda c, m: (c.model / "model.pt").write_bytes(b"tampered")),
    Case("branch-file-truncated", _run(), 1, "sha256 of gate.onnx is",
         setup=lambda c, m: (c.model / "gate.onnx").write_bytes((c.model / "gate.onnx").read_bytes()[:100])),
    Case("branch-input-shape", _run(), 1, "input 'rgb' has shape [1, 3, 64, 64] in the file, manifest says [1, 3, 32, 64]",
         setup=lambda c, m: _edit_manifest(c, lambda d: d["branches"][0]["inputs"][0].update(shape=[1, 3, 32, 64]))),
    Case("manifest-not-json", _run(), 1, "manifest.json is not valid JSON",
         setup=lambda c, m: (c.model / "manifest.json").write_text("{half")),
    Case("model-folder-missing", lambda c: ["run", c.tmp / "nope", "--source", SRC], 1, "nope"),
    # --- sources
    Case("depth-8bit", lambda c: ["run", c.model, "--source", _depth8_folder(c)], 1,
         "depth is an 8-bit PNG"),
    Case("depth-8bit-keeps-old-jsonl", lambda c: ["run", c.model, "--source", _depth8_folder(c), "--sink",
                                                  f"jsonl://{_existing(c, 'stats.jsonl')}"], 1,
         "depth is an 8-bit PNG"),  # failed before any frame: the sink is discarded, the old file stays
    Case("depth-scale-negative", lambda c: ["run", c.model, "--source", f"dir://{_depth8_folder(c)}?depth_scale_m=-1"], 1,
         "depth_scale_m must be > 0"),
    Case("bad-frame-stop", lambda c: ["run", c.model, "--source", _depth8_folder(c, bad_png=True), "--on-bad-frame",
                                      "stop", "--sink", f"jsonl://{c.tmp / 'rows.jsonl'}"], 1,
         "0001.png: unreadable or not an image"),
    # --- outputs
    Case("jsonl-is-folder", lambda c: ["run", c.model, "--source", SRC, "--sink", f"jsonl://{c.tmp}"], 1,
         "is a folder; give a file name ending in .jsonl"),
    Case("jsonl-under-file", lambda c: ["run", c.model, "--source", SRC, "--sink", f"jsonl://{_a_file(c)}/s.jsonl"], 1,
         "not_a_dir"),
    Case("mp4-under-file", lambda c: ["run", c.model, "--source", SRC, "--sink", f"{_a_file(c)}/o.mp4"], 1,
         "not_a_dir"),
    Case("png-dir-is-file", lambda c: ["run", c.model, "--source", SRC, "--sink", f"png://{_a_file(c)}"], 1,
         "exists and is not a directory"),
    Case("summary-under-file", lambda c: ["run", c.model, "--source", SRC, "--json", f"{_a_file(c)}/s.json"], 1,
         "not_a_dir"),
    Case("summary-alias-under-file", lambda c: ["run", c.model, "--source", SRC, "--summary-json",
                                                f"{_a_file(c)}/s.json"], 1, "not_a_dir"),
    Case("display-without-screen", lambda c: ["run", c.model, "--source", SRC, "--sink", "display://"], 1,
         "display:// needs a graphical display",
         setup=lambda c, m: (m.delenv("DISPLAY", raising=False), m.delenv("WAYLAND_DISPLAY", raising=False))),
    Case("sink-unknown", lambda c: ["run", c.model, "--source", SRC, "--sink", "rtsp://x"], 1, "unknown sink scheme 'rtsp'"),
    Case("jsonl-disk-full", lambda c: ["run", c.model, "--source", SRC, "--sink", f"jsonl://{c.tmp / 'stats.jsonl'}"], 1,
         "stats.jsonl: write failed (No space left on device)", setup=_enospc_jsonl),
    Case("mp4-disk-full", lambda c: ["run", c.model, "--source", SRC, "--sink", c.tmp / "out.mp4"], 1,
         "3 frames written but the file holds 1", setup=_short_video),
    Case("jsonl-locked", lambda c: ["run", c.model, "--source", SRC, "--sink", f"jsonl://{c.tmp / 'stats.jsonl'}"], 1,
         "stats.jsonl is being written by another dynmm-edge run",
         setup=lambda c, m: (_existing(c, "stats.jsonl"), _lock(c, c.tmp / "stats.jsonl"))),
    Case("export-exists", lambda c: ["export", "tiny-test", "-o", c.model], 1, "already exists and is not empty"),
    Case("export-onto-file", lambda c: ["export", "tiny-test", "-o", _a_file(c)], 1, "exists and is not a folder"),
    Case("export-locked", lambda c: ["export", "tiny-test", "-o", c.tmp / "new"], 1,
         "is being written by another dynmm-edge process", setup=lambda c, m: _lock(c, c.tmp / "new")),
    Case("calibrate-locked", lambda c: ["calibrate", c.model, "--source", SRC, "--frames", "2"], 1,
         "is being written by another dynmm-edge process", setup=lambda c, m: _lock(c, c.model)),
    Case("synth-under-file", lambda c: ["synth", "-o", f"{_a_file(c)}/s", "--frames", "1"], 1, "not_a_dir"),
    Case("info-runtime-only", lambda c: ["info", "tiny-test"], 1, "pip install 'dynmm-edge[export]'", setup=_no_torch),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_fault(case, model_copy, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ctx = Ctx(tmp=tmp_path / "work", model=model_copy)
    ctx.tmp.mkdir()
    try:
        if case.setup is not None:
            case.setup(ctx, monkeypatch)
        argv = case.argv(ctx)
        before = tree_hashes(ctx.model, *ctx.protect)
        rc, out, err = run_cli(argv, capsys)
    finally:
        for proc in getattr(ctx, "children", []):
            proc.send_signal(signal.SIGINT)  # the holder releases and removes its lock
            proc.wait(timeout=30)
    _record(case, argv, ctx, rc, err)
    assert rc == case.code, (rc, err[-2000:])
    assert case.match in err, err[-2000:]
    assert "Traceback" not in err and "Traceback" not in out
    error_lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(error_lines) == 1, err  # one line says what went wrong
    assert tree_hashes(ctx.model, *ctx.protect) == before  # nothing that existed was damaged
    assert litter(ctx.tmp) == [] and litter(ctx.model) == []


def _record(case, argv, ctx, rc, err):
    """With DYNMM_EDGE_FAULT_TABLE=FILE, append what happened (docs/RELIABILITY.md's fault table)."""
    table = os.environ.get("DYNMM_EDGE_FAULT_TABLE")
    if not table:
        return
    line = next((ln for ln in err.splitlines() if "error:" in ln), err.strip().splitlines()[-1] if err.strip() else "")
    shown = " ".join(str(a).replace(str(ctx.tmp), "WORK").replace(str(ctx.model), "MODEL") for a in argv)
    line = line.replace(str(ctx.tmp), "WORK").replace(str(ctx.model), "MODEL")
    with open(table, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"case": case.id, "command": shown, "exit": rc, "expected_exit": case.code,
                             "message": line, "xfail": bool(case.marks)}) + "\n")


def test_corpus_is_large_enough():
    assert len(CASES) >= 40


def test_verbose_shows_the_traceback(tmp_path, capsys):
    """-v re-raises the original error (here an OSError) instead of the one-line message."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    from dynmm_edge.apps.cli import main
    with pytest.raises(OSError):
        main(["-v", "synth", "-o", str(blocker / "s"), "--frames", "1"])
    rc, out, err = run_cli(["synth", "-o", blocker / "s", "--frames", "1"], capsys)
    assert rc == 1 and "Not a directory" in err and "Traceback" not in err

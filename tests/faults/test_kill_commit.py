"""SIGTERM and SIGKILL at every write step of calibrate and export --force leave a model folder
that loads and verifies, byte-identical to before or to the finished update.

The kill is injected by dynmm_edge.signals.fault_point (DYNMM_EDGE_FAULT_STEP=N). Commands run in
a forked child of this (already warm) process, which is a real process for the kernel: SIGKILL
ends it with no cleanup at all.
"""
import json
import os
import re
import shutil
import signal
import time

import pytest

from tests.faults.conftest import litter, tree_hashes

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="kills are injected into forked children (POSIX)")

SRC = "synthetic://?frames=12&width=64&height=64"


def _forked_cli(argv, env, tmp, timeout_s=120.0):
    """Run dynmm_edge.apps.cli.main(argv) in a forked child -> (exit code or -signal, stderr)."""
    err_path = tmp / f"stderr-{time.monotonic_ns()}.txt"
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 70
        try:
            fd = os.open(err_path, os.O_WRONLY | os.O_CREAT, 0o644)
            os.dup2(fd, 2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            import sys
            sys.stderr = os.fdopen(2, "w", buffering=1)  # pytest replaced the Python-level streams
            sys.stdout = os.fdopen(1, "w")
            os.environ.update(env)
            import dynmm_edge.signals as sig
            sig._fault_calls = 0
            from dynmm_edge.apps.cli import main
            code = main([str(a) for a in argv])
        except BaseException:  # noqa: BLE001
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"{argv} hung")
        time.sleep(0.02)
    return os.waitstatus_to_exitcode(status), err_path.read_text()


def _steps(argv, tmp, folder_factory):
    """Fault points of one clean run -> (labels, the folder after the run)."""
    folder = folder_factory(f"clean-{time.monotonic_ns()}")
    rc, err = _forked_cli(argv(folder), {"DYNMM_EDGE_FAULT_TRACE": "1"}, tmp)
    assert rc == 0, err[-3000:]
    labels = re.findall(r"^fault_point \d+: (.+)$", err, flags=re.M)
    return labels, folder


def _sweep_kills(argv, tmp, folder_factory, before, after, pick=None):
    """Kill at each step with each signal; check the folder every time. Returns the steps tried."""
    from dynmm_edge.folder_commit import folder_lock, sweep
    from dynmm_edge.manifest import load_manifest
    labels, _ = _steps(argv, tmp, folder_factory)
    assert any(lb == "manifest replaced" for lb in labels), labels
    steps = [i + 1 for i in range(len(labels)) if pick is None or pick(labels[i])]
    outcomes = {}
    for step in steps:
        for name, expect_rc in (("TERM", 128 + signal.SIGTERM), ("KILL", -signal.SIGKILL)):
            folder = folder_factory(f"{name}-{step}")
            rc, err = _forked_cli(argv(folder), {"DYNMM_EDGE_FAULT_STEP": str(step), "DYNMM_EDGE_FAULT_SIGNAL": name},
                                  tmp)
            where = f"SIG{name} at step {step} ({labels[step - 1]})"
            assert rc == expect_rc, f"{where}: exit {rc}\n{err[-3000:]}"
            assert "Traceback" not in err, f"{where}\n{err}"
            load_manifest(folder)  # loads and verifies every hash
            if name == "KILL":  # no cleanup ran: the next writer sweeps the leftovers
                with folder_lock(folder):
                    sweep(folder)
            state = _rel(tree_hashes(folder), folder)
            if state not in (before, after):
                diff = sorted(set(state.items()) ^ set(before.items()))
                pytest.fail(f"{where}: folder is neither the old nor the new model; differs from old in {diff}\n{err}")
            assert litter(folder) == [] and litter(folder.parent) == [], where
            outcomes[where] = "old" if state == before else "new"
    table = os.environ.get("DYNMM_EDGE_KILL_TABLE")  # docs/RELIABILITY.md's kill table
    if table:
        with open(table, "a", encoding="utf-8") as fh:
            for where, outcome in outcomes.items():
                fh.write(json.dumps({"command": argv("MODEL")[0], "kill": where, "folder_after": outcome}) + "\n")
    return outcomes


def _rel(hashes, root):
    return {os.path.relpath(k, root): v for k, v in hashes.items()}


@pytest.fixture
def calibrated(model_copy, tmp_path):
    """The tiny model with INT8 gate + depth0 (so a re-calibration replaces referenced files)."""
    from dynmm_edge.calibration.quantize import calibrate
    calibrate(model_copy, SRC, frames=8, branches="gate,depth0", strategy="first", min_frames=2)
    return model_copy


def _copier(src, tmp):
    def make(tag):
        dst = tmp / f"run-{tag}" / "model"
        shutil.copytree(src, dst)
        return dst
    return make


def test_calibrate_killed_at_every_step(calibrated, tmp_path):
    argv = lambda folder: ["calibrate", folder, "--source", SRC, "--frames", "8", "--branches", "gate,depth0",  # noqa: E731
                           "--method", "percentile", "--percentile", "99.9", "--strategy", "first"]
    make = _copier(calibrated, tmp_path)
    before = _rel(tree_hashes(calibrated), calibrated)
    _, done = _steps(argv, tmp_path, make)
    after = _rel(tree_hashes(done), done)
    assert after != before and sorted(after) != sorted(before)  # new files under new names, old ones gone
    outcomes = _sweep_kills(argv, tmp_path, make, before, after)
    assert "old" in outcomes.values() and "new" in outcomes.values()
    assert len(outcomes) >= 10


@pytest.mark.slow
def test_export_force_killed_at_every_step(model_copy, tmp_path):
    argv = lambda folder: ["export", "tiny-test", "-o", folder, "--force"]  # noqa: E731  (other weights)
    make = _copier(model_copy, tmp_path)
    before = _rel(tree_hashes(model_copy), model_copy)
    _, done = _steps(argv, tmp_path, make)
    after = _rel(tree_hashes(done), done)
    assert after != before
    # every step that touches the model folder, plus the first and last of the staging steps
    labels, _ = _steps(argv, tmp_path, make)
    staged = [lb for lb in labels if lb.startswith("staged")]
    keep = {staged[0], staged[-1]}
    outcomes = _sweep_kills(argv, tmp_path, make, before, after,
                            pick=lambda lb: not lb.startswith("staged") or lb in keep)
    assert "old" in outcomes.values() and "new" in outcomes.values()


def test_export_into_new_folder_killed_leaves_nothing_that_loads(tmp_path):
    """Into a new folder the last step is one rename: a kill before it leaves no folder at all."""
    from dynmm_edge.manifest import load_manifest
    out = tmp_path / "fresh" / "model"
    rc, err = _forked_cli(["export", "tiny-test", "-o", out], {"DYNMM_EDGE_FAULT_STEP": "3",
                                                                  "DYNMM_EDGE_FAULT_SIGNAL": "KILL"}, tmp_path)
    assert rc == -signal.SIGKILL
    assert not out.exists()
    rc, err = _forked_cli(["export", "tiny-test", "-o", out], {}, tmp_path)  # the next export sweeps the leftovers
    assert rc == 0, err
    load_manifest(out)
    assert litter(out.parent) == []

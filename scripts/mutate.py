#!/usr/bin/env python3
"""Apply each deliberate mutation, run the tests that claim to catch it, report which failed.

usage: .venv/bin/python scripts/mutate.py [NAME ...] [--list]

Each mutation is a literal (old -> new) text replacement in one product file. The file is patched
in place, the named tests run in a fresh pytest process, and the original bytes are written back
in a `finally` block, so the tree is restored on success, failure, Ctrl-C (KeyboardInterrupt) and
SIGTERM (turned into an exception). A mutation whose `old` text is missing is reported as
NOT APPLIED (the code moved; update the mutation), never as killed. Exit status 1 if any mutation
survived or could not be applied.
"""
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    why: str
    file: str
    old: str
    new: str
    tests: Tuple[str, ...]


MUTATIONS = (
    Mutation("video-partial-left-behind", "the video sink copies instead of renaming: .partial.mp4 stays",
             "dynmm_edge/io/sinks.py", "  # mkstemp made it 0600\n                os.replace(self.tmp_path, self.path)\n",
             "  # mkstemp made it 0600\n                import shutil; shutil.copyfile(self.tmp_path, self.path)\n",
             ("tests/apps/test_demo_cli.py::test_demo_writes_video_stats_and_summary",)),
    Mutation("re-export-every-time", "on-the-fly export ignores the cache",
             "dynmm_edge/models.py", "    if not (out / \"manifest.json\").is_file():\n        from dynmm_edge.export",
             "    if True:\n        from dynmm_edge.export",
             ("tests/runtime/test_session.py::test_checkpoint_exported_on_the_fly_into_hash_keyed_cache",)),
    Mutation("cache-key-ignores-version", "an export from an older package version is reused",
             "dynmm_edge/models.py", '"version": version, ', "",
             ("tests/runtime/test_session.py::test_model_cache_key_covers_source_version_and_export_settings",)),
    Mutation("hysteresis-margin-ignored", "make_policy drops the parsed margin",
             "dynmm_edge/runtime/policy.py", "HysteresisPolicy(inner_policy, _finite(",
             "HysteresisPolicy(inner_policy, 0.5 + 0 * _finite(",  # still validated, value ignored
             ("tests/runtime/test_session.py::test_make_policy",
              "tests/runtime/test_session.py::test_parsed_hysteresis_margin_decides_when_to_switch")),
    Mutation("slow-not-deselected", "the slow tests run in the default set",
             "pyproject.toml", "addopts = \"-ra -m 'not slow'\"", "addopts = \"-ra\"",
             ("tests/test_layout_rules.py::test_slow_tests_are_deselected_by_default_and_run_by_the_test_script",)),
    Mutation("upward-import", "the manifest imports the backends again (lazily, inside a function)",
             "dynmm_edge/manifest.py", "def sha256_file(path) -> str:\n",
             "def sha256_file(path) -> str:\n    from dynmm_edge.backends.base import TensorSpec  # noqa: F401\n",
             ("tests/test_import_graph.py::test_imports_only_go_down",)),
    Mutation("umask-at-import", "atomic.py sets the umask at import time again",
             "dynmm_edge/atomic.py", "_umask: Optional[int] = None\n",
             "_umask: Optional[int] = os.umask(0)\nos.umask(_umask)\n",
             ("tests/test_atomic.py::test_import_does_not_touch_the_umask",)),
    Mutation("session-leaks-backend", "Session.close no longer closes the backend",
             "dynmm_edge/runtime/session.py", "            self.backend.close()\n", "            pass\n",
             ("tests/runtime/test_session.py::test_session_owns_and_closes_its_backend",)),
    Mutation("plan-present-all-ones", "every path claims all depth features present",
             "dynmm_edge/runtime/plan.py", "                    vec[idx] = 1.0\n", "                    vec[idx] = 1.0\n"
             "            vec = [1.0] * n_present\n",
             ("tests/runtime/test_plan.py",)),
    Mutation("function-too-long", "a product function grows past 80 lines",
             "dynmm_edge/paths.py", "def cache_dir() -> Path:\n",
             "def _long():\n" + "".join(f"    x{i} = {i}\n" for i in range(85)) + "\n\ndef cache_dir() -> Path:\n",
             ("tests/test_function_length.py::test_no_function_over_80_lines",)),
    # TensorRT compatibility (issue 16): the SDK against real binding names, the fakes against them
    Mutation("trt-max-workspace-on-10", "an adapter sets config.max_workspace_size (gone since TensorRT 10)",
             "export/trt_build.py",
             "    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)\n",
             "    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)\n"
             "    config.max_workspace_size = int(workspace_mb) << 20\n",
             ("tests/backends/test_trt_real_names.py", "tests/backends/test_tensorrt_fake.py")),
    Mutation("trt-fake-int8-on-11", "the TensorRT 11 fake offers BuilderFlag.INT8 (gone in 11)",
             "tests/fakes/fake_tensorrt.py", '    BuilderFlag = enum.IntEnum("BuilderFlag", flag_names)\n',
             '    BuilderFlag = enum.IntEnum("BuilderFlag", flag_names + (["INT8"] if major >= 11 else []))\n',
             ("tests/backends/test_trt_real_names.py", "tests/backends/test_tensorrt_fake.py")),
)


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run_one(m: Mutation) -> Tuple[str, list, float]:
    path = ROOT / m.file
    original = path.read_bytes()
    text = original.decode("utf-8")
    if text.count(m.old) != 1:
        return "NOT APPLIED", [f"target text found {text.count(m.old)} times in {m.file}"], 0.0
    t0 = time.perf_counter()
    try:
        path.write_text(text.replace(m.old, m.new), encoding="utf-8")
        cmd = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", *m.tests]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    finally:
        path.write_bytes(original)  # restored even on Ctrl-C / SIGTERM
    failed = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    status = "KILLED" if proc.returncode != 0 and failed else ("SURVIVED" if proc.returncode == 0 else "BROKEN")
    if status == "BROKEN":
        failed = [proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]]
    return status, failed, time.perf_counter() - t0


def main(argv) -> int:
    if "--list" in argv:
        for m in MUTATIONS:
            print(f"{m.name:<28} {m.file}: {m.why}")
        return 0
    chosen = [m for m in MUTATIONS if not argv or m.name in argv]
    unknown = set(argv) - {m.name for m in MUTATIONS}
    if unknown:
        print(f"mutate.py: error: unknown mutation(s) {sorted(unknown)}; see --list", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _sigterm)
    bad = 0
    for m in chosen:
        status, failed, secs = run_one(m)
        bad += status != "KILLED"
        print(f"{status:<11} {m.name:<28} ({secs:5.1f} s) {m.why}")
        for f in failed:
            print(f"            failed: {f}")
    print(f"{len(chosen) - bad}/{len(chosen)} mutations killed")
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("mutate.py: interrupted; the tree was restored", file=sys.stderr)
        sys.exit(130)

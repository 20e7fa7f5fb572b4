#!/usr/bin/env python3
"""Apply deliberate TensorRT-compatibility mutations one at a time and show which tests catch them.

(a) an adapter setting config.max_workspace_size (gone since TensorRT 10);
(b) the TensorRT 11 fake offering BuilderFlag.INT8 (gone in 11).
Each mutation is reverted afterwards, whatever happens.  python scripts/trt_mutations.py
"""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MUTATIONS = {
    "(a) adapter sets max_workspace_size on 10.x/11": (
        "export/trt_build.py",
        "    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)\n",
        "    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)\n"
        "    config.max_workspace_size = int(workspace_mb) << 20\n"),
    "(b) fake 11 offers BuilderFlag.INT8": (
        "tests/fakes/fake_tensorrt.py",
        '    BuilderFlag = enum.IntEnum("BuilderFlag", flag_names)\n',
        '    BuilderFlag = enum.IntEnum("BuilderFlag", flag_names + (["INT8"] if major >= 11 else []))\n'),
}
TESTS = ["tests/backends/test_trt_real_names.py", "tests/backends/test_tensorrt_fake.py"]


def run() -> int:
    failures = 0
    for label, (rel, old, new) in MUTATIONS.items():
        path = REPO / rel
        original = path.read_text()
        if old not in original:
            print(f"{label}: anchor not found in {rel}; update this script")
            return 2
        try:
            path.write_text(original.replace(old, new, 1))
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
                                  cwd=REPO, capture_output=True, text=True)
        finally:
            path.write_text(original)
        failed = sorted({line.split(" - ")[0].replace("FAILED ", "") for line in proc.stdout.splitlines()
                         if line.startswith("FAILED")})
        print(f"{label}: {'CAUGHT' if failed else 'NOT CAUGHT'} ({len(failed)} failing tests)")
        for f in failed:
            print(f"    {f}")
        failures += not failed
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run())

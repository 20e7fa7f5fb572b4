"""The runtime needs numpy alone: importing, the CLI help and ORT inference never touch torch/TensorRT."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BLOCKER = textwrap.dedent("""
    import sys, importlib.abc
    BLOCKED = {blocked!r}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split('.')[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked in this test (simulating an install without it)")
    sys.meta_path.insert(0, Block())
""")


def _run(code, blocked):
    script = BLOCKER.format(blocked=sorted(blocked)) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_import_and_cli_help_without_optional_packages():
    out = _run("""
        import dynmm_edge, dynmm_edge.runtime.session, dynmm_edge.io.sources, dynmm_edge.power.discover
        from dynmm_edge.apps.cli import main
        for argv in (["--help"], ["run", "--help"], ["bench", "--help"], ["demo", "--help"], ["export", "--help"]):
            try:
                main(argv)
            except SystemExit as e:
                assert e.code == 0, argv
        print("MODULES", sorted(m for m in sys.modules if m.split('.')[0] in
              ("torch", "tensorrt", "pycuda", "cuda", "onnx", "onnxruntime", "cv2", "pyrealsense2")))
    """, {"torch", "tensorrt", "pycuda", "cuda", "onnx", "onnxruntime", "cv2", "pyrealsense2", "matplotlib"})
    assert out.returncode == 0, out.stderr
    assert "usage: dynmm-edge run" in out.stdout
    assert "MODULES []" in out.stdout


def test_ort_inference_without_torch_tensorrt_or_cuda(tiny_export):
    pytest.importorskip("onnxruntime")
    _, _, m = tiny_export
    out = _run(f"""
        import numpy as np
        from dynmm_edge.models import open_session
        from dynmm_edge.types import Frame
        with open_session({str(m.folder)!r}, policy="fixed:full") as s:
            r = s.infer(Frame(0, np.zeros((48, 64, 3), np.uint8), np.full((48, 64), 1500, np.uint16)))
        print("LABELS", r.labels.shape, r.path)
        assert "torch" not in sys.modules
    """, {"torch", "tensorrt", "pycuda", "cuda"})
    assert out.returncode == 0, out.stderr
    assert "LABELS (48, 64) 5" in out.stdout  # labels at the frame's resolution (the model runs 64x64)


@pytest.mark.slow
def test_real_venv_without_extras_has_cli_help(tmp_path):
    """pip install -e . (numpy only) in a fresh venv: the package imports and the CLI prints help."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "-e", str(ROOT)], capture_output=True, text=True,
                       timeout=600, env=env)
    if r.returncode != 0:
        pytest.skip(f"pip could not install numpy into a fresh venv here: {r.stderr[-300:]}")
    r = subprocess.run([str(venv / "bin" / "dynmm-edge"), "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "dynmm-edge" in r.stdout and "demo" in r.stdout
    r = subprocess.run([str(py), "-c", "import dynmm_edge, importlib.util as u; "
                        "print(u.find_spec('torch') is None, u.find_spec('onnxruntime') is None)"],
                       capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "True True"

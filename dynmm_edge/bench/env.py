"""What machine and software produced a benchmark: recorded with every bench JSON.

Latency and energy mean nothing without the power mode and clocks (nvpmodel, jetson_clocks on
Jetson), so those are captured too. Never raises: anything that cannot be found is None.
Package versions come from importlib.metadata, so nothing heavy (torch, tensorrt) gets imported.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from typing import Callable, Dict, Optional

PACKAGES = ("numpy", "onnxruntime", "onnxruntime-gpu", "torch", "tensorrt", "onnx", "opencv-python",
            "pyrealsense2", "nvidia-ml-py", "cuda-python")


def _safe(fn: Callable, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception:
        return None


def package_versions(names=PACKAGES) -> Dict[str, Optional[str]]:
    from importlib import metadata

    out: Dict[str, Optional[str]] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
        except Exception:
            out[name] = None
    if out.get("tensorrt") is None:  # JetPack installs TensorRT as a dist called tensorrt-* or via apt
        for alt in ("tensorrt-cu12", "tensorrt-cu13", "tensorrt_libs"):
            v = _safe(metadata.version, alt)
            if v:
                out["tensorrt"] = v
                break
    return out


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace").replace("\x00", "").strip() or None
    except OSError:
        return None


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> Optional[str]:
    """x86 'model name', or aarch64 'Hardware'/'CPU part' fallbacks, or platform.processor()."""
    text = _read(cpuinfo) or ""
    for key in ("model name", "Hardware", "Model", "cpu model"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if m:
            return m.group(1).strip()
    m = re.search(r"^CPU part\s*:\s*(\S+)$", text, re.MULTILINE)
    if m:
        return f"ARM CPU part {m.group(1)}"
    return platform.processor() or None


def gpu_name() -> Optional[str]:
    """NVML first (no CUDA context), then torch.cuda only if torch is already imported."""
    try:
        import pynvml  # noqa: WPS433 (optional)

        pynvml.nvmlInit()
        try:
            name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
            return name.decode() if isinstance(name, bytes) else str(name)
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
        except Exception:
            return None
    return None


def _run(cmd, timeout=5.0) -> Optional[str]:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except Exception:
        return None
    return (p.stdout or "").strip() if p.returncode == 0 else None


def nvpmodel_mode(run: Callable = _run) -> Optional[dict]:
    """`nvpmodel -q`: 'NV Power Mode: MAXN' + mode id line -> {name, id, raw}."""
    out = run(["nvpmodel", "-q"])
    if not out:
        return None
    name = re.search(r"NV Power Mode:\s*(.+)", out)
    ids = re.findall(r"^\s*(\d+)\s*$", out, re.MULTILINE)
    return {"name": name.group(1).strip() if name else None, "id": int(ids[-1]) if ids else None, "raw": out}


def jetson_clocks_state(run: Callable = _run, gpu_devfreq_glob: str = "/sys/devices/*/devfreq/*/") -> Optional[dict]:
    """Whether clocks are pinned: `jetson_clocks --show` (needs root) or GPU devfreq min == max."""
    out = run(["jetson_clocks", "--show"])
    if out:
        return {"source": "jetson_clocks --show", "raw": out}
    import glob

    for d in sorted(glob.glob(gpu_devfreq_glob)):
        if not re.search(r"gpu|gv11b|ga10b|gp10b|gb10b", d):
            continue
        lo, hi, cur = (_read(os.path.join(d, f)) for f in ("min_freq", "max_freq", "cur_freq"))
        if lo and hi:
            return {"source": d, "gpu_min_hz": int(lo), "gpu_max_hz": int(hi),
                    "gpu_cur_hz": int(cur) if cur else None, "pinned": lo == hi}
    return None


def os_info() -> Optional[dict]:
    rel = {}
    text = _read("/etc/os-release") or ""
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            rel[k] = v.strip('"')
    return {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
            "pretty_name": rel.get("PRETTY_NAME"), "l4t": _read("/etc/nv_tegra_release")}


def environment() -> dict:
    """Everything known about this machine; each field is None when it cannot be read."""
    return {
        "python": platform.python_version(),
        "packages": _safe(package_versions) or {},
        "cpu_model": _safe(cpu_model),
        "cpu_cores": _safe(os.cpu_count),
        "gpu_name": _safe(gpu_name),
        "jetson_model": _safe(_read, "/proc/device-tree/model"),
        "nvpmodel": _safe(nvpmodel_mode),
        "jetson_clocks": _safe(jetson_clocks_state),
        "os": _safe(os_info),
    }

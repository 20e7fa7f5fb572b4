"""Lazy imports of optional dependencies with an error that says what to install."""
import importlib

from dynmm_edge.errors import MissingDependency

_PIP_NAMES = {
    "torch": "torch  (pip install 'dynmm-edge[torch]')",
    "onnx": "onnx  (pip install 'dynmm-edge[export]')",
    "onnxruntime": "onnxruntime  (pip install 'dynmm-edge[ort]')",
    "tensorrt": "tensorrt  (comes with JetPack; on x86: pip install tensorrt)",
    "pyrealsense2": "pyrealsense2  (pip install 'dynmm-edge[realsense]'; needs the system library libusb-1.0-0)",
    "cv2": "opencv-python  (pip install 'dynmm-edge[viz]'; may need the system library libgl1)",
    "matplotlib": "matplotlib  (pip install 'dynmm-edge[viz]')",
    "pycuda": "pycuda  (pip install pycuda; needs the NVIDIA driver)",
    "cuda": "cuda-python  (pip install cuda-python)",
    "pynvml": "nvidia-ml-py  (pip install nvidia-ml-py)",
    "tqdm": "tqdm  (pip install tqdm)",
    "rosbags": "rosbags  (pip install 'dynmm-edge[ros]')",
}


def require(module: str, purpose: str = ""):
    """Import `module` or raise MissingDependency naming the package to install and why."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # includes missing shared libraries such as libusb
        top = module.split(".")[0]
        what = _PIP_NAMES.get(top, top)
        why = f" for {purpose}" if purpose else ""
        raise MissingDependency(f"{module} is needed{why} but could not be imported: {exc}. Install {what}.") from exc


def available(module: str) -> bool:
    """True when `module` imports cleanly (used by tests to skip with a reason)."""
    try:
        importlib.import_module(module)
        return True
    except Exception:
        return False

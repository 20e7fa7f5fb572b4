"""DynMM model core: config, presets, the network with true depth skipping, costs, checkpoints.

torch is imported by the submodules (net, costs, checkpoints); config and presets are torch-free.
"""
from dynmm_edge.model.config import ModelConfig
from dynmm_edge.model.presets import PRESETS, get_preset, preset_names

__all__ = ["ModelConfig", "PRESETS", "get_preset", "preset_names"]

_LAZY = {
    "DynMMNet": "dynmm_edge.model.net",
    "load_model": "dynmm_edge.model.checkpoints",
    "load_checkpoint": "dynmm_edge.model.checkpoints",
    "save_checkpoint": "dynmm_edge.model.checkpoints",
    "branch_macs": "dynmm_edge.model.costs",
    "path_macs": "dynmm_edge.model.costs",
    "depth_path_macs": "dynmm_edge.model.costs",
}


def __getattr__(name):
    """torch-backed names load on first use, so `import dynmm_edge.model` stays numpy-only."""
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dynmm_edge.model' has no attribute {name!r}")

"""DynMM model core: config, presets, the network with true depth skipping, costs, checkpoints.

torch is imported by the submodules (net, costs, checkpoints); config and presets are torch-free.
"""
from dynmm_edge.model.config import ModelConfig
from dynmm_edge.model.presets import PRESETS, get_preset, preset_names

__all__ = ["ModelConfig", "PRESETS", "get_preset", "preset_names"]

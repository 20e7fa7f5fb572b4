"""Where shipped assets and the user's model cache live (no imports beyond the standard library).

Low in the layering so model loading, the runtime and the apps can all name the demo model
without importing each other.
"""
import os
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_MODEL = ASSETS / "demo_model"  # trained by scripts/train_demo.sh; model.pt is its checkpoint


def cache_dir() -> Path:
    """$DYNMM_EDGE_CACHE, else ~/.cache/dynmm_edge (models exported on the fly live under models/)."""
    return Path(os.environ.get("DYNMM_EDGE_CACHE", Path.home() / ".cache" / "dynmm_edge"))

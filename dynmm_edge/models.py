"""Model resolution and session opening: the one place that turns what a user typed into a Session.

A model folder, a checkpoint file, a preset name or 'demo' -> a model folder; checkpoints and
presets are exported on the fly into a cache. This module sits above both the runtime and export
in the layering (docs/DESIGN.md), so the runtime never imports the exporter; the apps and
dynmm_edge.load() call it.
"""
import hashlib
import inspect
import json
from pathlib import Path
from typing import Any, Dict, Union

from dynmm_edge._version import __version__
from dynmm_edge.backends.registry import make_backend
from dynmm_edge.errors import DynMMError, ManifestError
from dynmm_edge.manifest import load_manifest, sha256_file
from dynmm_edge.paths import DEMO_MODEL, cache_dir
from dynmm_edge.runtime.session import Session

# export_model keywords that are bookkeeping, not part of what the exported folder contains
_NOT_SETTINGS = ("force", "progress")


def export_settings() -> Dict[str, Any]:
    """The exporter's keyword defaults that shape an on-the-fly export (opset, size, fp16, ...)."""
    from dynmm_edge.export.exporter import export_model
    params = inspect.signature(export_model).parameters.values()
    return {p.name: p.default for p in params
            if p.kind is p.KEYWORD_ONLY and p.name not in _NOT_SETTINGS}


def model_cache_key(source: str, settings: Dict[str, Any], version: str = __version__) -> str:
    """Cache folder name for an on-the-fly export: the source (checkpoint hash or preset name), the
    package version and the export settings, so an upgrade or a new default never reuses an old export."""
    blob = json.dumps({"source": source, "version": version, "export": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def resolve_model(model: Union[str, Path], progress=None) -> Path:
    """A model folder, a checkpoint file, a preset name or 'demo' -> a model folder.

    Checkpoints and presets are exported on the fly into a cache keyed by their hash, the package
    version and the export settings (needs torch).
    """
    model = str(model)
    if model == "demo":
        if not (DEMO_MODEL / "manifest.json").is_file():
            raise DynMMError(f"the demo model is not shipped in this installation ({DEMO_MODEL})")
        return DEMO_MODEL
    p = Path(model)
    if p.is_dir():
        if not (p / "manifest.json").is_file():
            raise ManifestError(f"{p} is a folder without manifest.json: export a model into it with `dynmm-edge export`")
        return p
    if p.is_file():
        source = "sha256:" + sha256_file(p)
    else:
        from dynmm_edge.model.presets import PRESETS
        if model not in PRESETS:
            raise DynMMError(f"model {model!r} is not a model folder, a checkpoint file, 'demo' or a preset "
                             f"({', '.join(PRESETS)})")
        source = f"preset:{model}"
    out = cache_dir() / "models" / model_cache_key(source, export_settings())
    if not (out / "manifest.json").is_file():
        from dynmm_edge.export.exporter import export_model
        export_model(model, out, force=True, progress=progress)
    return out


def open_backend(name: str = "ort", **opts):
    """A backend from the registry; a TensorRT one gets the exporter's engine builder."""
    if name == "trt" and "builder" not in opts:
        from dynmm_edge.export.trt_build import build_engine
        opts["builder"] = build_engine
    return make_backend(name, **opts)


def open_session(model="demo", backend="ort", *, precision=None, policy=None, backend_opts=None,
                 sync_timing: bool = True, progress=None) -> Session:
    """Resolve `model`, load its manifest (hashes checked) and run it on `backend` (a name or a Backend)."""
    folder = resolve_model(model, progress=progress)
    manifest = load_manifest(folder)
    be = open_backend(backend, **(backend_opts or {})) if isinstance(backend, str) else backend
    return Session(manifest, be, precision=precision, policy=policy, sync_timing=sync_timing)

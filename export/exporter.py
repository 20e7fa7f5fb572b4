"""`dynmm-edge export`: checkpoint or preset -> model folder (ONNX per branch + manifest.json).

The folder is assembled in a hidden sibling and renamed into place at the end, so an interrupted
export never leaves a folder whose manifest loads.
"""
import io
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Dict, Optional

from dynmm_edge._version import __version__
from dynmm_edge._lazy import require
from dynmm_edge.atomic import current_umask
from dynmm_edge.errors import DynMMError
from dynmm_edge.manifest import SCHEMA, SCHEMA_VERSION, parse_manifest, sha256_file

DEFAULT_OPSET = 17
TORCH_DTYPES = {"torch.float32": "float32", "torch.float16": "float16", "torch.int32": "int32",
                "torch.int64": "int64", "torch.uint8": "uint8", "torch.bool": "bool"}


def resize_model(net, height: Optional[int], width: Optional[int]):
    """Rebuild `net` for another input size (PPM kernels depend on it; weights do not)."""
    if (height or net.config.height) == net.config.height and (width or net.config.width) == net.config.width:
        return net
    from dynmm_edge.model.net import DynMMNet
    cfg = replace(net.config, height=height or net.config.height, width=width or net.config.width)
    resized = DynMMNet(cfg)
    resized.load_state_dict(net.state_dict())
    return resized.eval()


def export_branch_onnx(module, inputs, input_names, output_names, opset=DEFAULT_OPSET, dynamic_batch=False):
    """Export one branch with every tensor named; returns the checked ONNX ModelProto."""
    torch = require("torch", "ONNX export")
    onnx = require("onnx", "ONNX export")
    buf = io.BytesIO()
    dyn = None
    if dynamic_batch:
        dyn = {n: {0: "batch"} for n in (*input_names, *output_names) if n != "depth_present"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(module, tuple(inputs), buf, input_names=list(input_names),
                              output_names=list(output_names), opset_version=opset, do_constant_folding=True,
                              dynamic_axes=dyn, dynamo=False)
    model = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(model)
    return model


def stage_onnx(tmp: Path, name: str, module, example_list, input_names, output_names, opset: int,
               dynamic_batch: bool) -> Dict[str, str]:
    """Export one branch to tmp/NAME.onnx after the TensorRT static check; its fp32 variant entry."""
    from dynmm_edge.export.trt_check import check_model
    from dynmm_edge.signals import fault_point

    model = export_branch_onnx(module, example_list, input_names, output_names, opset=opset,
                               dynamic_batch=dynamic_batch)
    problems = check_model(model, name)
    if problems:
        raise DynMMError("TensorRT compatibility check failed:\n  " + "\n  ".join(problems))
    fname = f"{name}.onnx"
    (tmp / fname).write_bytes(model.SerializeToString())
    fault_point(f"staged {fname}")
    return {"file": fname, "sha256": sha256_file(tmp / fname)}


def _spec(name, tensor, dynamic_batch):
    shape = list(tensor.shape)
    if dynamic_batch and name != "depth_present":
        shape[0] = -1
    return {"name": name, "shape": shape, "dtype": TORCH_DTYPES[str(tensor.dtype)]}


def check_size(value: Optional[int], flag: str) -> None:
    """Input sizes are positive multiples of 32 (the encoders downsample 5 times)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 32:
        raise DynMMError(f"{flag} {value!r}: must be a positive multiple of 32 (e.g. 480 or 640)")


def export_model(spec, out_dir, *, height: Optional[int] = None, width: Optional[int] = None,
                 opset: int = DEFAULT_OPSET, dynamic_batch: bool = False, force: bool = False,
                 fp16: bool = False, progress=None, import_options: Optional[Dict] = None):
    """Export a preset name, checkpoint path or (net, meta) pair to `out_dir`; returns the Manifest.

    import_options (dataset, num_classes, upsampling, overrides) go to load_model: how to read an
    ESANet/DynMM file, or the head of a preset. height/width also go there, so an import is built
    for the export size directly."""
    check_size(height, "height")
    check_size(width, "width")
    torch = require("torch", "export")
    from dynmm_edge.folder_commit import folder_lock, sweep
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DynMMError(f"{out_dir} exists and is not a folder: choose another -o/--output")
    with folder_lock(out_dir):  # a second export into the same folder fails instead of replacing it
        if out_dir.exists() and not force and any(out_dir.iterdir()):
            raise DynMMError(f"{out_dir} already exists and is not empty: pass --force to replace it")
        sweep(out_dir)  # what a killed export or update left behind
        _export_locked(spec, out_dir, torch, height, width, opset, dynamic_batch, fp16, progress, import_options)
    from dynmm_edge.manifest import load_manifest
    return load_manifest(out_dir)


def _export_locked(spec, out_dir: Path, torch, height, width, opset, dynamic_batch, fp16, progress,
                   import_options=None) -> None:
    from dynmm_edge.model.checkpoints import load_model, model_checkpoint, save_checkpoint
    from dynmm_edge.model.split import example_inputs, split_model
    from dynmm_edge.signals import fault_point
    source_file = None
    if isinstance(spec, tuple):
        net, meta = spec
    else:
        spec = model_checkpoint(spec)  # 'demo' or a model folder -> its checkpoint file
        net, meta = load_model(spec, height=height, width=width, **(import_options or {}))
        if Path(spec).is_file() and "import" not in meta:
            source_file = Path(spec)  # our own format: ship its bytes (keeps e.g. fp16 packing)
    resized = resize_model(net.eval(), height, width)
    if resized is not net:
        source_file = None
    net = resized
    cfg = net.config
    say = progress or (lambda msg: None)

    branches, paths, zero_inputs = split_model(net)
    examples = example_inputs(net, branches)
    costs = exported_costs(net)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; the model folder gets the usual permissions
    try:
        entries = []
        for b in branches:
            say(f"exporting branch {b.name}")
            variants = {"fp32": stage_onnx(tmp, b.name, b.module, [examples[n] for n in b.input_names],
                                           b.input_names, b.output_names, opset, dynamic_batch)}
            fname = variants["fp32"]["file"]
            if fp16:
                from dynmm_edge.export.fp16 import convert_fp16
                convert_fp16(tmp / fname, tmp / f"{b.name}.fp16.onnx")
                variants["fp16"] = {"file": f"{b.name}.fp16.onnx", "sha256": sha256_file(tmp / f"{b.name}.fp16.onnx")}
            entries.append({
                "name": b.name, "kind": b.kind, "segment": b.segment, "precision": "fp32", "variants": variants,
                "inputs": [_spec(n, examples[n], dynamic_batch) for n in b.input_names],
                "outputs": [_spec(n, examples[n], dynamic_batch) for n in b.output_names],
                "macs": int(costs["branches"][b.name]["macs"]), "params": int(costs["branches"][b.name]["params"])})
        regions = None
        if getattr(net, "region", None) is not None:  # optional region branches + manifest 'regions'
            from dynmm_edge.export.region_export import export_region
            region_entries, regions = export_region(net, tmp, opset, _spec, say)
            entries += region_entries
        preprocess = dict(meta.get("preprocess", {}))
        preprocess.update(height=cfg.height, width=cfg.width)
        meta = {**meta, "preprocess": preprocess}
        say("saving checkpoint copy for the PyTorch backend")
        if source_file is not None:
            shutil.copyfile(source_file, tmp / "model.pt")
        else:
            save_checkpoint(tmp / "model.pt", net, meta)
        fault_point("staged model.pt")
        trained = weights_trained(meta)
        if not trained:
            warn = (f"{meta.get('name', out_dir.name)}: exporting UNTRAINED (random-init) weights; the "
                    "manifest says trained: false and the default policy is fixed:full")
            logging.getLogger(__name__).warning(warn)
            say(f"warning: {warn}")
        manifest = _manifest_dict(meta, out_dir, cfg, net, dynamic_batch, zero_inputs, entries, paths, costs,
                                  sha256_file(tmp / "model.pt"), torch.__version__, opset)
        if regions is not None:
            manifest["regions"] = regions
        parse_manifest(manifest, tmp)  # validate before it becomes visible
        from dynmm_edge.atomic import write_json
        write_json(tmp / "manifest.json", manifest)
        fault_point("staged manifest.json")
        _swap_into_place(tmp, out_dir, manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _manifest_dict(meta, out_dir, cfg, net, dynamic_batch, zero_inputs, entries, paths, costs, checkpoint_sha,
                   torch_version, opset) -> Dict:
    palette = [list(map(int, c)) for c in meta["palette"]]
    # random-init weights (a preset) are not a model to use: say so and run the plain full path;
    # an imported static ESANet has no trained gate: run it as "always full depth" by default
    trained = weights_trained(meta)
    gate_trained = trained and bool(meta.get("gate_trained", meta.get("train", {}).get("gate_trained", True)))
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "name": meta.get("name", out_dir.name),
        "trained": trained,
        "input": {"height": cfg.height, "width": cfg.width, "dynamic_batch": dynamic_batch},
        "preprocess": meta["preprocess"], "classes": list(meta["classes"]), "palette": palette,
        "gate": {"placement": cfg.gate, "branch": "gate", "output": "gate_logits", "paths": list(net.paths),
                 "zero_inputs": zero_inputs, "present_input": "depth_present",
                 "trained": gate_trained,
                 "default_policy": (meta.get("default_policy") if trained else None)
                 or ("argmax" if gate_trained else "fixed:full")},
        "branches": entries,
        "paths": {str(k): list(v) for k, v in paths.items()},
        "macs": {"total_per_path": {str(k): int(v) for k, v in costs["total_per_path"].items()},
                 "depth_per_path": {str(k): int(v) for k, v in costs["depth_per_path"].items()}},
        "model_config": cfg.to_dict(),
        "checkpoint": {"file": "model.pt", "sha256": checkpoint_sha},
        "created_by": {"dynmm_edge": __version__, "torch": torch_version, "opset": opset},
    }


def weights_trained(meta) -> bool:
    """False for random-init weights (presets exported without a checkpoint), True otherwise."""
    return (meta.get("train") or {}).get("weights") != "random-init"


def _swap_into_place(tmp: Path, out_dir: Path, manifest: Dict) -> None:
    """Make the finished folder visible in one atomic step.

    A new (or empty) folder: one rename. An existing model folder: new files under names its
    manifest does not use, then the manifest switch, then cleanup (folder_commit), so a kill at
    any point leaves the old model or the new one. Any other existing folder (--force): moved
    aside, then replaced.
    """
    from dynmm_edge.folder_commit import MANIFEST, commit, fsync_dir
    if (out_dir / MANIFEST).is_file():
        commit(out_dir, {p.name: p for p in sorted(tmp.iterdir()) if p.name != MANIFEST}, manifest)
        return
    old = None
    if out_dir.exists() and any(out_dir.iterdir()):
        old = out_dir.with_name(f".{out_dir.name}.partial-old-{os.getpid()}")
        os.replace(out_dir, old)
    elif out_dir.exists():
        out_dir.rmdir()
    os.replace(tmp, out_dir)
    fsync_dir(out_dir.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


STEM_RGB_MODULES = ("encoder_rgb.conv1", "encoder_rgb.bn1", "se_layer0.se_rgb")


def exported_costs(net) -> Dict:
    """MACs/params per exported branch plus per-path totals (counting convention of model.costs).

    Stem-gate models export a 'stem' branch = depth stage 0 + the RGB stem + fusion 0.
    """
    from dynmm_edge.model.costs import branch_macs, branch_params, depth_path_macs, module_macs, path_macs
    macs, params = branch_macs(net), branch_params(net)
    branches = {k: {"macs": macs[k], "params": params[k]} for k in macs}
    if net.config.gate == "stem":
        stem_macs = sum(v for n, v in module_macs(net).items() if n.startswith(STEM_RGB_MODULES))
        stem_params = sum(p.numel() for n, p in net.named_parameters() if n.startswith(STEM_RGB_MODULES))
        d0 = branches.pop("depth0")
        branches["stem"] = {"macs": d0["macs"] + stem_macs, "params": d0["params"] + stem_params}
        branches["trunk"] = {"macs": macs["trunk"] - stem_macs, "params": params["trunk"] - stem_params}
    return {"branches": branches, "depth_per_path": depth_path_macs(net, branches=macs),
            "total_per_path": path_macs(net, branches=macs)}

"""FP16 ONNX with FP32 inputs/outputs: the only FP16 path on TensorRT 11 (no builder flag there).

Every float initializer and float tensor type inside the graph becomes float16; Cast nodes are
inserted after float inputs and before float outputs, so callers keep feeding and reading float32.
Ops whose attributes carry a float dtype (Cast to float) are retargeted.
"""
from pathlib import Path

import numpy as np

from dynmm_edge._lazy import require


def convert_fp16(src, dst=None, keep_io_fp32: bool = True):
    """Convert an FP32 ONNX model (path or ModelProto) to FP16; write to dst atomically if given."""
    onnx = require("onnx", "FP16 conversion")
    from onnx import TensorProto, helper, numpy_helper
    model = onnx.load(str(src)) if not hasattr(src, "graph") else src
    model = onnx.ModelProto.FromString(model.SerializeToString())  # never mutate the caller's model
    g = model.graph
    FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16

    # inputs whose type the ONNX spec pins to float32 (Resize roi/scales) must stay float32
    keep_fp32 = {n.input[j] for n in g.node if n.op_type == "Resize" for j in (1, 2) if len(n.input) > j}
    for i, init in enumerate(list(g.initializer)):
        if init.data_type == FLOAT and init.name not in keep_fp32:
            arr = numpy_helper.to_array(init).astype(np.float16)
            g.initializer[i].CopyFrom(numpy_helper.from_array(arr, init.name))
    for node in g.node:
        if node.op_type == "Constant" and node.output[0] not in keep_fp32:
            for a in node.attribute:
                if a.name == "value" and a.t.data_type == FLOAT:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
        if node.op_type == "Cast":
            for a in node.attribute:
                if a.name == "to" and a.i == FLOAT:
                    a.i = HALF
        if node.op_type in ("ConstantOfShape",):
            for a in node.attribute:
                if a.name == "value" and a.t.data_type == FLOAT:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
    for vi in g.value_info:
        if vi.type.tensor_type.elem_type == FLOAT and vi.name not in keep_fp32:
            vi.type.tensor_type.elem_type = HALF

    new_nodes = []
    if keep_io_fp32:
        for inp in g.input:
            if inp.type.tensor_type.elem_type != FLOAT:
                continue
            casted = inp.name + "__fp16"
            for node in g.node:
                for j, n in enumerate(node.input):
                    if n == inp.name:
                        node.input[j] = casted
            new_nodes.append(helper.make_node("Cast", [inp.name], [casted], to=HALF, name=f"cast_in_{inp.name}"))
        for out in g.output:
            if out.type.tensor_type.elem_type != FLOAT:
                continue
            inner = out.name + "__fp16"
            for node in g.node:
                for j, n in enumerate(node.output):
                    if n == out.name:
                        node.output[j] = inner
                for j, n in enumerate(node.input):
                    if n == out.name:
                        node.input[j] = inner
            new_nodes.append(helper.make_node("Cast", [inner], [out.name], to=FLOAT, name=f"cast_out_{out.name}"))
    else:
        for vi in list(g.input) + list(g.output):
            if vi.type.tensor_type.elem_type == FLOAT:
                vi.type.tensor_type.elem_type = HALF
    in_casts = [n for n in new_nodes if n.name.startswith("cast_in_")]
    out_casts = [n for n in new_nodes if n.name.startswith("cast_out_")]
    nodes = in_casts + list(g.node) + out_casts
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model)
    if dst is not None:
        from dynmm_edge.atomic import write_bytes
        write_bytes(Path(dst), model.SerializeToString())
    return model


def add_fp16_variants(folder, branches=None, progress=None):
    """Write <branch>.fp16.onnx for each branch lacking one and register them in the manifest.

    The manifest is rewritten (atomically) only after every file exists, so a failure leaves the
    folder loading exactly as before.
    """
    from dynmm_edge.folder_commit import folder_lock, sweep
    with folder_lock(folder):
        sweep(folder)
        _add_fp16_locked(folder, branches, progress)
    from dynmm_edge.manifest import load_manifest
    return load_manifest(folder)


def _add_fp16_locked(folder, branches, progress) -> None:
    from dataclasses import replace as dc_replace
    from dynmm_edge.folder_commit import replace_manifest
    from dynmm_edge.manifest import Variant, load_manifest, sha256_file
    from dynmm_edge.signals import fault_point
    m = load_manifest(folder)
    new = []
    written = []
    try:
        for b in m.branches:
            if "fp16" in b.variants or (branches and b.name not in branches):
                new.append(b)
                continue
            if progress:
                progress(f"FP16 variant of {b.name}")
            dst = m.folder / f"{b.name}.fp16.onnx"  # not referenced by the current manifest
            convert_fp16(m.file_path(b, "fp32"), dst)
            written.append(dst)
            fault_point(f"placed {dst.name}")
            variants = dict(b.variants)
            variants["fp16"] = Variant(dst.name, sha256_file(dst))
            new.append(dc_replace(b, variants=variants))
        if written:
            replace_manifest(m.folder, m.with_branches(new).to_dict())
    except BaseException:
        on_disk = load_manifest(folder, verify_hashes=False)
        if all("fp16" not in b.variants for b in on_disk.branches if b.name in {f.name.split(".")[0] for f in written}):
            for f in written:
                f.unlink(missing_ok=True)
        raise

"""Static check that a branch ONNX stays inside what TensorRT's ONNX parser accepts (8.5, 10, 11).

Run at export and after calibration: catching an unsupported op here beats a parser error on the
Jetson. The op list is the intersection we rely on; anything else is reported, not silently kept.
"""
from typing import List

import numpy as np

from dynmm_edge._lazy import require

# ops our exporter emits that TensorRT 8.5+ parses (onnx-tensorrt operator support matrix)
TRT_SUPPORTED_OPS = frozenset("""
Add Sub Mul Div Relu Sigmoid Tanh Clip Conv ConvTranspose BatchNormalization MaxPool AveragePool
GlobalAveragePool GlobalMaxPool Concat Reshape Flatten Transpose Slice Gather Shape Constant Identity
Unsqueeze Squeeze Resize Upsample Pad ArgMax Cast ReduceMean ReduceMax Gemm MatMul Softmax Expand
QuantizeLinear DequantizeLinear Split Where Equal Not HardSigmoid HardSwish LeakyRelu Pow Sqrt Neg Min Max
ConstantOfShape Range Floor Ceil Exp Log Abs Erf
""".split())
UNSUPPORTED_HINTS = {
    "AdaptiveAvgPool2d": "adaptive pooling has no TensorRT layer: use fixed pooling sizes",
    "ATen": "an ATen fallback op cannot be parsed by TensorRT",
}
OPSET_RANGE = (9, 17)  # TensorRT 8.5's parser goes up to opset 17; 10/11 accept it too


def check_model(model_or_path, name: str = "branch") -> List[str]:
    """Return a list of problems (empty = fine) for TensorRT 8.5/10/11 compatibility."""
    onnx = require("onnx", "checking ONNX files")
    from onnx import numpy_helper
    model = onnx.load(str(model_or_path)) if not hasattr(model_or_path, "graph") else model_or_path
    problems = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        problems.append(f"{name}: opset {opset} outside TensorRT 8.5..11 parser range {OPSET_RANGE}")
    inits = {i.name: i for i in model.graph.initializer}
    consts = {}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"{name}: node '{node.name}' uses custom domain '{node.domain}' ({node.op_type})")
            continue
        if node.op_type not in TRT_SUPPORTED_OPS:
            hint = UNSUPPORTED_HINTS.get(node.op_type, "not in the supported-op list")
            problems.append(f"{name}: node '{node.name}' op {node.op_type}: {hint}")
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) >= 3:
            zp_name = node.input[2]
            zp = numpy_helper.to_array(inits[zp_name]) if zp_name in inits else consts.get(zp_name)
            if zp is not None and np.any(np.asarray(zp) != 0):
                problems.append(f"{name}: {node.op_type} '{node.name}' has a non-zero zero-point: "
                                f"TensorRT accepts symmetric quantisation only")
        if node.op_type == "Resize":
            for a in node.attribute:
                if a.name == "mode" and a.s.decode() not in ("nearest", "linear"):
                    problems.append(f"{name}: Resize '{node.name}' mode {a.s.decode()} unsupported")
    return problems

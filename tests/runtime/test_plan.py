"""ExecutionPlan: per-path branches, zero-bound inputs and depth_present vectors, from a manifest alone."""
from pathlib import Path

import numpy as np
import pytest

from dynmm_edge.errors import ManifestError
from dynmm_edge.manifest import Branch, Manifest, Variant
from dynmm_edge.runtime.plan import ExecutionPlan
from dynmm_edge.tensors import TensorSpec


def _t(name, *shape):
    return TensorSpec(name, shape or (-1, 4, 8, 8))


def _b(name, kind, ins, outs):
    return Branch(name=name, kind=kind, inputs=tuple(_t(n) if isinstance(n, str) else n for n in ins),
                  outputs=tuple(_t(n) for n in outs), variants={"fp32": Variant(f"{name}.onnx", "0" * 64)})


def _stem_gate_manifest(zero_inputs=None, present="depth_present"):
    """Stem gate, two depth segments: stem -> gate -> depth1 -> depth2 -> trunk."""
    branches = (
        _b("stem", "stem", ["rgb", "depth"], ["fused_0", "depth_feat_0"]),
        _b("gate", "gate", ["fused_0", "depth_feat_0"], ["gate_logits"]),
        _b("depth1", "depth", ["depth_feat_0"], ["depth_feat_1"]),
        _b("depth2", "depth", ["depth_feat_1"], ["depth_feat_2"]),
        _b("trunk", "trunk", ["fused_0", "depth_feat_1", "depth_feat_2", _t("depth_present", 3)], ["labels"]),
    )
    paths = {0: ("stem", "gate", "trunk"), 1: ("stem", "gate", "depth1", "trunk"),
             2: ("stem", "gate", "depth1", "depth2", "trunk")}
    gate = {"branch": "gate", "zero_inputs": zero_inputs or {"depth_feat_1": 1, "depth_feat_2": 2},
            "present_input": present}
    macs = {"depth_per_path": {"0": 0.0, "1": 30.0, "2": 120.0}, "total_per_path": {"0": 1, "1": 2, "2": 3}}
    return Manifest(folder=Path("/nowhere"), name="stem", height=8, width=8, preprocess={}, classes=(),
                    palette=(), gate=gate, branches=branches, paths=paths, macs=macs)


def test_stem_gate_plan():
    plan = ExecutionPlan.from_manifest(_stem_gate_manifest())
    assert plan.pre_gate == ("stem", "gate") and plan.gate_branch == "gate" and plan.gate_output == "gate_logits"
    assert plan.path_values == (0, 1, 2) and plan.present_input == "depth_present"
    assert set(plan.zero_specs) == {"depth_feat_1", "depth_feat_2"}
    assert plan.zero_specs["depth_feat_1"].concrete(1) == (1, 4, 8, 8)
    p0, p1, p2 = (plan.paths[k] for k in (0, 1, 2))
    assert p0.branches == ("stem", "gate", "trunk") and p2.branches[-2:] == ("depth2", "trunk")
    assert p0.zero_inputs == ("depth_feat_1", "depth_feat_2") and p1.zero_inputs == ("depth_feat_2",)
    assert p2.zero_inputs == ()
    # index 0 (the stem's own feature) never reads as skipped: the trunk does not read it
    assert p0.depth_present == (0.0, 0.0, 0.0) and p1.depth_present == (0.0, 1.0, 0.0)
    assert p2.depth_present == (0.0, 1.0, 1.0)
    assert p1.present_vector().dtype == np.float32
    assert [plan.paths[k].depth_fraction for k in (0, 1, 2)] == [0.0, 0.25, 1.0]


def test_shipped_raw_gate_plan():
    from dynmm_edge.manifest import load_manifest
    from dynmm_edge.paths import DEMO_MODEL
    if not (DEMO_MODEL / "manifest.json").is_file():
        pytest.skip("demo model not shipped")
    m = load_manifest(DEMO_MODEL, verify_hashes=False)
    plan = ExecutionPlan.from_manifest(m)
    assert plan.pre_gate == ("gate",)
    for k in m.path_values:
        p = plan.paths[k]
        assert p.branches == ("gate", *[f"depth{i}" for i in range(k)], "trunk")
        assert p.depth_present == tuple(1.0 if i < k else 0.0 for i in range(5))
        assert p.zero_inputs == tuple(f"depth_feat_{i}" for i in range(k, 5))


def test_plan_rejects_unknown_zero_or_present_inputs():
    with pytest.raises(ManifestError, match=r"zero_inputs \['depth_feat_9'\]"):
        ExecutionPlan.from_manifest(_stem_gate_manifest(zero_inputs={"depth_feat_9": 1}))
    with pytest.raises(ManifestError, match="present_input 'presence'"):
        ExecutionPlan.from_manifest(_stem_gate_manifest(present="presence"))

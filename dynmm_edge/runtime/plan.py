"""ExecutionPlan: what the Session runs for each gate path, decided from the manifest alone.

Pure (no backend, no arrays on a device), so the per-path set-up is tested without running a model
and the Session only turns the plan into bound buffers: one zero buffer per skippable depth
feature and one depth_present vector per path, both made once at start-up.
"""
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from dynmm_edge.errors import ManifestError
from dynmm_edge.manifest import RegionSpec, region_spec
from dynmm_edge.tensors import TensorSpec


@dataclass(frozen=True)
class PathPlan:
    """One gate path: branches in execution order, the trunk inputs bound to zeros, depth_present."""
    path: int
    branches: Tuple[str, ...]
    zero_inputs: Tuple[str, ...]
    depth_present: Tuple[float, ...]
    depth_fraction: float

    def present_vector(self) -> np.ndarray:
        return np.asarray(self.depth_present, np.float32)


@dataclass(frozen=True)
class RegionPlan:
    """Region mode (docs/REGIONS.md), beside the gate paths: the manifest's 'regions' section and the
    region trunk's per-stage feature inputs, bound to zeros when no tile runs through that stage."""
    spec: RegionSpec
    zero_features: Mapping[str, TensorSpec]

    @property
    def branches(self) -> Tuple[str, ...]:
        """Every region-mode branch in execution order (the region gate only for gate policies)."""
        s = self.spec
        return (s.gate_branch, s.stem_branch, *(st.branch for st in s.stages), s.trunk_branch)

    @classmethod
    def from_manifest(cls, manifest) -> Optional["RegionPlan"]:
        spec = region_spec(manifest)
        if spec is None:
            return None
        trunk = {t.name: t for t in manifest.branch(spec.trunk_branch).inputs}
        missing = [st.feature for st in spec.stages if st.feature not in trunk]
        if missing or spec.mask_input not in trunk or spec.stem_output not in trunk:
            raise ManifestError(f"{manifest.folder}: region trunk '{spec.trunk_branch}' lacks inputs "
                                f"{missing + [n for n in (spec.mask_input, spec.stem_output) if n not in trunk]}")
        return cls(spec=spec, zero_features={st.feature: trunk[st.feature] for st in spec.stages})


@dataclass(frozen=True)
class ExecutionPlan:
    """Per-path set-up of a Session. `pre_gate`: the branches every gated frame runs up to and
    including the gate (raw gate: [gate]; stem gate: [stem, gate]). `region`: the region-mode plan
    when the manifest has a 'regions' section (region branches belong to no gate path)."""
    gate_branch: str
    gate_output: str
    pre_gate: Tuple[str, ...]
    present_input: Optional[str]
    zero_specs: Mapping[str, TensorSpec]
    paths: Mapping[int, PathPlan]
    region: Optional[RegionPlan] = None

    @property
    def path_values(self) -> Tuple[int, ...]:
        return tuple(sorted(self.paths))

    @classmethod
    def from_manifest(cls, manifest) -> "ExecutionPlan":
        gate = manifest.gate
        inputs = {t.name: t for b in manifest.branches if b.kind != "region" for t in b.inputs}
        zero_index: Dict[str, int] = dict(gate.get("zero_inputs", {}))
        missing = sorted(n for n in zero_index if n not in inputs)
        if missing:
            raise ManifestError(f"{manifest.folder}: gate.zero_inputs {missing} are inputs of no branch")
        present_input = gate.get("present_input")
        if present_input is not None and present_input not in inputs:
            raise ManifestError(f"{manifest.folder}: gate.present_input '{present_input}' is an input of no branch")
        n_present = inputs[present_input].shape[0] if present_input else 0
        full = max(manifest.depth_macs(manifest.full_path), 1.0)
        paths = {}
        for k, seq in manifest.paths.items():
            produced = {t.name for s in seq for t in manifest.branch(s).outputs}
            vec = [0.0] * n_present
            for name, idx in zero_index.items():
                if name in produced:
                    vec[idx] = 1.0
            paths[k] = PathPlan(path=k, branches=tuple(seq),
                                zero_inputs=tuple(n for n in zero_index if n not in produced),
                                depth_present=tuple(vec), depth_fraction=manifest.depth_macs(k) / full)
        gate_branch = gate["branch"]
        first = manifest.paths[manifest.full_path]
        return cls(gate_branch=gate_branch, gate_output=gate.get("output", "gate_logits"),
                   pre_gate=tuple(first[:first.index(gate_branch) + 1]), present_input=present_input,
                   zero_specs={n: inputs[n] for n in zero_index}, paths=paths,
                   region=RegionPlan.from_manifest(manifest))

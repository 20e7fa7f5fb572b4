"""manifest.json: the one contract between export and runtime.

A model folder describes itself: branch files with sha256, named inputs/outputs, the branch graph
and the branches each gate path runs, preprocessing constants, classes and palette, MACs per branch
and path, precision variants. Everything is validated on load and every error says what is wrong.
"""
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from dynmm_edge.errors import ManifestError
from dynmm_edge.tensors import PRECISIONS, TensorSpec

SCHEMA = "dynmm-edge/manifest"
SCHEMA_VERSION = 1
MODEL_INPUTS = ("rgb", "depth")
BRANCH_KINDS = ("gate", "stem", "depth", "trunk", "region")


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_join(folder: Path, rel: str, what: str) -> Path:
    """Resolve a manifest path and refuse anything that leaves the model folder."""
    if not isinstance(rel, str) or not rel or Path(rel).is_absolute() or "\\" in rel:
        raise ManifestError(f"{what}: file path {rel!r} must be a relative path inside the model folder")
    root = folder.resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise ManifestError(f"{what}: file path {rel!r} leaves the model folder {folder}")
    return target


@dataclass(frozen=True)
class Variant:
    file: str
    sha256: str


@dataclass(frozen=True)
class Branch:
    """One engine-sized piece of the network."""
    name: str
    kind: str
    inputs: Tuple[TensorSpec, ...]
    outputs: Tuple[TensorSpec, ...]
    variants: Mapping[str, Variant]
    precision: str = "fp32"
    segment: Optional[int] = None
    macs: int = 0
    params: int = 0

    @property
    def file(self) -> str:
        return self.variants[self.precision].file

    @property
    def sha256(self) -> str:
        return self.variants[self.precision].sha256

    def variant(self, precision: str) -> Variant:
        if precision not in self.variants:
            raise ManifestError(f"branch '{self.name}' has no {precision} variant; it has {sorted(self.variants)}"
                                f" (run `dynmm-edge build` / `calibrate` first)")
        return self.variants[precision]

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "segment": self.segment, "precision": self.precision,
                "variants": {p: {"file": v.file, "sha256": v.sha256} for p, v in self.variants.items()},
                "inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs],
                "macs": int(self.macs), "params": int(self.params)}


@dataclass(frozen=True)
class Manifest:
    folder: Path
    name: str
    height: int
    width: int
    preprocess: Dict[str, Any]
    classes: Tuple[str, ...]
    palette: Tuple[Tuple[int, int, int], ...]
    gate: Dict[str, Any]
    branches: Tuple[Branch, ...]
    paths: Dict[int, Tuple[str, ...]]
    macs: Dict[str, Any]
    model_config: Dict[str, Any] = field(default_factory=dict)
    extra: Dict[str, Any] = field(default_factory=dict)

    # convenience --------------------------------------------------------------------------
    def branch(self, name: str) -> Branch:
        for b in self.branches:
            if b.name == name:
                return b
        raise ManifestError(f"no branch named '{name}' in {self.folder}/manifest.json")

    @property
    def path_values(self) -> Tuple[int, ...]:
        return tuple(sorted(self.paths))

    @property
    def full_path(self) -> int:
        return max(self.paths)

    @property
    def rgb_only_path(self) -> int:
        return min(self.paths)

    def depth_macs(self, path: int) -> float:
        return float(self.macs["depth_per_path"][str(path)])

    def total_macs(self, path: int) -> float:
        return float(self.macs["total_per_path"][str(path)])

    def file_path(self, branch: Branch, precision: Optional[str] = None) -> Path:
        v = branch.variant(precision or branch.precision)
        return safe_join(self.folder, v.file, f"branch '{branch.name}'")

    def to_dict(self) -> Dict[str, Any]:
        d = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "name": self.name,
             "input": {"height": self.height, "width": self.width},
             "preprocess": dict(self.preprocess), "classes": list(self.classes),
             "palette": [list(c) for c in self.palette], "gate": dict(self.gate),
             "branches": [b.to_dict() for b in self.branches],
             "paths": {str(k): list(v) for k, v in sorted(self.paths.items())},
             "macs": self.macs, "model_config": self.model_config}
        d.update(self.extra)
        return d

    def save(self) -> Path:
        from dynmm_edge.atomic import write_json
        return write_json(self.folder / "manifest.json", self.to_dict())

    def with_branches(self, branches) -> "Manifest":
        from dataclasses import replace
        return replace(self, branches=tuple(branches))


def _req(d: Mapping, key: str, where: str, typ=None):
    if not isinstance(d, Mapping) or key not in d:
        raise ManifestError(f"manifest.json: missing key '{key}' in {where}")
    v = d[key]
    if typ is not None and not isinstance(v, typ):
        raise ManifestError(f"manifest.json: '{where}.{key}' must be {typ.__name__ if isinstance(typ, type) else typ}, "
                            f"got {type(v).__name__}")
    return v


def _tensors(items, where) -> Tuple[TensorSpec, ...]:
    if not isinstance(items, list) or not items:
        raise ManifestError(f"manifest.json: {where} must be a non-empty list of tensors")
    out = []
    for i, t in enumerate(items):
        try:
            spec = TensorSpec.from_dict(t)
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"manifest.json: bad tensor {where}[{i}]: {exc!r}") from None
        if spec.dtype not in ("float32", "float16", "int32", "int64", "uint8", "bool"):
            raise ManifestError(f"manifest.json: tensor '{spec.name}' in {where} has unknown dtype {spec.dtype!r}")
        out.append(spec)
    return tuple(out)


def _size(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ManifestError(f"manifest.json: {where} must be a positive integer, got {value!r}; re-export the model")
    return value


def _check_preprocess(pre) -> None:
    """Sizes positive, constants finite: a zero or NaN here would make every frame silently wrong."""
    if not isinstance(pre, Mapping):
        return  # _req reports a missing block
    for key in ("height", "width"):
        if key in pre:
            _size(pre[key], f"preprocess.{key}")
    for key, v in pre.items():
        vals = v if isinstance(v, (list, tuple)) else [v]
        for x in vals:
            if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
                raise ManifestError(f"manifest.json: preprocess.{key} is {v!r}; it must be finite")
    for key in ("depth_std", "rgb_std"):
        vals = pre.get(key)
        vals = vals if isinstance(vals, (list, tuple)) else [vals]
        if any(isinstance(x, (int, float)) and x <= 0 for x in vals):
            raise ManifestError(f"manifest.json: preprocess.{key} is {pre[key]!r}; it must be > 0")


def check_checkpoint(ck, folder: Path, verify_hashes: bool = True) -> None:
    """The checkpoint entry gets the branch files' checks: inside the folder, sha256 as recorded.

    A folder may ship without its checkpoint (ONNX-only deployment); the torch backend and
    commands that need it say so when it is missing.
    """
    if ck is None:
        return
    if not isinstance(ck, Mapping) or not isinstance(ck.get("file"), str) or not isinstance(ck.get("sha256"), str):
        raise ManifestError("manifest.json: 'checkpoint' must be {\"file\": str, \"sha256\": str}")
    target = safe_join(folder, ck["file"], "checkpoint")
    if verify_hashes and target.is_file():
        actual = sha256_file(target)
        if actual != ck["sha256"]:
            raise ManifestError(f"checkpoint {ck['file']}: sha256 is {actual[:12]}..., manifest says "
                                f"{ck['sha256'][:12]}...: the file was changed or truncated; re-export the model")


def check_io_shapes(branch, actual: Mapping[str, Sequence]) -> List[str]:
    """Manifest input shapes vs a loaded graph's (name -> dims; str/None/-1 = dynamic). Problems, or []."""
    problems = []
    for spec in branch.inputs:
        if spec.name not in actual:
            continue
        got = list(actual[spec.name])
        want = list(spec.shape)
        same = len(got) == len(want) and all(
            not isinstance(g, int) or w < 0 or g < 0 or g == w for g, w in zip(got, want))
        if not same:
            problems.append(f"input '{spec.name}' has shape {got} in the file, manifest says {want}")
    return problems


def parse_manifest(data: Mapping[str, Any], folder: Path, verify_hashes: bool = True) -> Manifest:
    """Validate a manifest dict against the files in `folder`; raise ManifestError saying what is wrong."""
    folder = Path(folder)
    if not isinstance(data, Mapping):
        raise ManifestError("manifest.json: top level must be an object")
    if data.get("schema") != SCHEMA:
        raise ManifestError(f"manifest.json: schema is {data.get('schema')!r}, expected {SCHEMA!r}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError(f"manifest.json: schema_version {version!r} is not supported (this SDK reads {SCHEMA_VERSION})")
    inp = _req(data, "input", "manifest", Mapping)
    height, width = _size(_req(inp, "height", "input"), "input.height"), _size(_req(inp, "width", "input"), "input.width")
    _check_preprocess(data.get("preprocess"))
    check_checkpoint(data.get("checkpoint"), folder, verify_hashes)
    classes = tuple(str(c) for c in _req(data, "classes", "manifest", list))
    palette = tuple(tuple(int(x) for x in c) for c in _req(data, "palette", "manifest", list))
    if len(palette) < len(classes):
        raise ManifestError(f"manifest.json: palette has {len(palette)} colours for {len(classes)} classes")
    gate = dict(_req(data, "gate", "manifest", Mapping))
    branches: List[Branch] = []
    seen = set()
    for i, b in enumerate(_req(data, "branches", "manifest", list)):
        where = f"branches[{i}]"
        name = str(_req(b, "name", where))
        if name in seen:
            raise ManifestError(f"manifest.json: branch name '{name}' appears twice")
        seen.add(name)
        kind = _req(b, "kind", where)
        if kind not in BRANCH_KINDS:
            raise ManifestError(f"manifest.json: branch '{name}' has unknown kind {kind!r} (expected one of {BRANCH_KINDS})")
        variants = {}
        for prec, v in _req(b, "variants", where, Mapping).items():
            if prec not in PRECISIONS:
                raise ManifestError(f"manifest.json: branch '{name}' has unknown precision {prec!r}")
            f = _req(v, "file", f"{where}.variants.{prec}", str)
            digest = _req(v, "sha256", f"{where}.variants.{prec}", str)
            target = safe_join(folder, f, f"branch '{name}' ({prec})")
            if not target.is_file():
                raise ManifestError(f"branch '{name}' ({prec}): file {f} is missing from {folder}")
            if verify_hashes:
                actual = sha256_file(target)
                if actual != digest:
                    raise ManifestError(f"branch '{name}' ({prec}): sha256 of {f} is {actual[:12]}..., manifest says "
                                        f"{digest[:12]}...: the file was changed or truncated; re-export the model")
            variants[prec] = Variant(f, digest)
        precision = b.get("precision", "fp32")
        if precision not in variants:
            raise ManifestError(f"manifest.json: branch '{name}' selects precision {precision!r} but has only {sorted(variants)}")
        branches.append(Branch(name=name, kind=kind, inputs=_tensors(b.get("inputs"), f"{name}.inputs"),
                               outputs=_tensors(b.get("outputs"), f"{name}.outputs"), variants=variants,
                               precision=precision, segment=b.get("segment"), macs=int(b.get("macs", 0)),
                               params=int(b.get("params", 0))))
    raw_paths = _req(data, "paths", "manifest", Mapping)
    try:
        paths = {int(k): tuple(v) for k, v in raw_paths.items()}
    except (TypeError, ValueError):
        raise ManifestError("manifest.json: 'paths' keys must be integers (number of depth segments)") from None
    if not paths:
        raise ManifestError("manifest.json: 'paths' is empty")
    macs = dict(_req(data, "macs", "manifest", Mapping))
    for key in ("depth_per_path", "total_per_path"):
        table = _req(macs, key, "macs", Mapping)
        for k in paths:
            if str(k) not in table:
                raise ManifestError(f"manifest.json: macs.{key} has no entry for path {k}")
    known = {
        "schema", "schema_version", "name", "input", "preprocess", "classes", "palette", "gate", "branches",
        "paths", "macs", "model_config"}
    m = Manifest(folder=folder, name=str(data.get("name", folder.name)), height=height, width=width,
                 preprocess=dict(_req(data, "preprocess", "manifest", Mapping)), classes=classes, palette=palette,
                 gate=gate, branches=tuple(branches), paths=paths, macs=macs,
                 model_config=dict(data.get("model_config", {})),
                 extra={k: v for k, v in data.items() if k not in known})
    _check_graph(m)
    if "regions" in m.extra:
        region_spec(m)  # validated on load; absent in frame-gate-only (and older) manifests
    return m


def _check_graph(m: Manifest) -> None:
    """Every path must be executable in order: each input produced earlier, a model input or a bound zero."""
    names = {b.name for b in m.branches}
    zero_inputs = set(m.gate.get("zero_inputs", {}))
    present = m.gate.get("present_input")
    gate_branch = m.gate.get("branch")
    if gate_branch not in names:
        raise ManifestError(f"manifest.json: gate.branch {gate_branch!r} is not a branch")
    for k, seq in m.paths.items():
        unknown = [s for s in seq if s not in names]
        if unknown:
            raise ManifestError(f"manifest.json: path {k} names unknown branch(es) {unknown}")
        if gate_branch not in seq:
            raise ManifestError(f"manifest.json: path {k} does not run the gate branch '{gate_branch}'")
        # bound zeros stand in for skipped depth features only where the trunk consumes them
        available = set(MODEL_INPUTS)
        for s in seq:
            b = m.branch(s)
            usable = available | ((zero_inputs | {present}) if b.kind == "trunk" else set())
            for t in b.inputs:
                if t.name not in usable:
                    raise ManifestError(f"manifest.json: path {k}: branch '{s}' needs tensor '{t.name}' "
                                        f"that no earlier branch produces")
            available |= {t.name for t in b.outputs}


@dataclass(frozen=True)
class RegionStage:
    branch: str
    input: str
    output: str
    feature: str
    in_stride: int
    out_stride: int
    halo: int
    window: Tuple[int, int]


@dataclass(frozen=True)
class RegionSpec:
    """The manifest's optional 'regions' section: tile grid, halos, branches, buckets, MACs."""
    tile: int
    rows: int
    cols: int
    halo_mode: str
    gate_branch: str
    gate_output: str
    stem_branch: str
    stem_output: str
    stages: Tuple[RegionStage, ...]
    trunk_branch: str
    mask_input: str
    buckets: Tuple[int, ...]
    macs: Dict[str, float]

    @property
    def count(self) -> int:
        return self.rows * self.cols

    def depth_macs(self, active: int) -> float:
        """Depth MACs of a frame with `active` tiles: dense stem + tiles with halos + SE + region gate."""
        m = self.macs
        tiles = 0.0 if active <= 0 else active * float(m["per_tile_macs"]) + float(m["se_macs"])
        return float(m["dense_macs"]) + tiles + float(m["gate_macs"])

    def tile_batch_range(self, typical_share: float = 0.3) -> Tuple[int, int, int]:
        """(min, opt, max) tile batch of a tile-stage engine profile: 1, the bucket of a typical share, all tiles."""
        from dynmm_edge.tiles import tile_batch_range
        return tile_batch_range(self.buckets, typical_share)


def region_spec(m: "Manifest") -> Optional[RegionSpec]:
    """Parse and validate m.extra['regions'] (None when the model has no region gate)."""
    data = m.extra.get("regions")
    if data is None:
        return None
    where = "regions"
    try:
        tile, rows, cols = (int(_req(data, k, where)) for k in ("tile", "rows", "cols"))
        gate, stem, trunk = (_req(data, k, where, Mapping) for k in ("gate", "stem", "trunk"))
        stages = tuple(RegionStage(branch=str(s["branch"]), input=str(s["input"]), output=str(s["output"]),
                                   feature=str(s["feature"]), in_stride=int(s["in_stride"]),
                                   out_stride=int(s["out_stride"]), halo=int(s["halo"]),
                                   window=(int(s["window"][0]), int(s["window"][1])))
                       for s in _req(data, "stages", where, list))
        spec = RegionSpec(tile=tile, rows=rows, cols=cols, halo_mode=str(data.get("halo_mode", "none")),
                          gate_branch=str(gate["branch"]), gate_output=str(gate["output"]),
                          stem_branch=str(stem["branch"]), stem_output=str(stem["output"]), stages=stages,
                          trunk_branch=str(trunk["branch"]), mask_input=str(trunk["mask_input"]),
                          buckets=tuple(int(b) for b in _req(data, "buckets", where, list)),
                          macs={k: float(v) for k, v in _req(data, "macs", where, Mapping).items()})
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ManifestError(f"manifest.json: bad 'regions' section: {exc!r}") from None
    if tile < 32 or tile % 32 or rows * tile != m.height or cols * tile != m.width:
        raise ManifestError(f"manifest.json: regions.tile {tile} px x {rows}x{cols} tiles does not divide the "
                            f"{m.width}x{m.height} input into whole 1/32-grid tiles")
    if len(stages) != 4 or any(s.halo < 0 or s.out_stride % s.in_stride for s in stages):
        raise ManifestError("manifest.json: regions.stages must list 4 tile stages with halos >= 0")
    b = spec.buckets
    if not b or list(b) != sorted(set(b)) or b[0] < 1 or b[-1] != spec.count:
        raise ManifestError(f"manifest.json: regions.buckets {list(b)} must be increasing, >= 1, and end at the "
                            f"tile count {spec.count}")
    for key in ("dense_macs", "per_tile_macs", "se_macs", "gate_macs", "full_depth_macs"):
        if key not in spec.macs:
            raise ManifestError(f"manifest.json: regions.macs has no {key!r}")
    names = {br.name for br in m.branches}
    for name in [spec.gate_branch, spec.stem_branch, spec.trunk_branch, *(s.branch for s in stages)]:
        if name not in names:
            raise ManifestError(f"manifest.json: regions names branch {name!r}, which the manifest does not list")
    return spec


def resolve_keys(keys: Sequence[str], manifest) -> Dict[str, List[str]]:
    """Each key (branch name, kind, or 'all') -> the branch names it means; unknown key -> ManifestError."""
    names = [b.name for b in manifest.branches]
    out = {}
    for key in keys:
        if key in ("all", "*"):
            out[key] = list(names)
        elif key in names:
            out[key] = [key]
        elif key in BRANCH_KINDS:
            found = [b.name for b in manifest.branches if b.kind == key]
            if not found:
                raise ManifestError(f"model {manifest.folder} has no '{key}' branch (branches: {names})")
            out[key] = found
        else:
            raise ManifestError(f"unknown branch or kind {key!r} for model {manifest.folder}; "
                                f"use one of the kinds {sorted(set(b.kind for b in manifest.branches))}, "
                                f"'all', or a branch name {names}")
    return out


def parse_precision_spec(spec: Optional[str], manifest) -> Dict[str, str]:
    """'gate=fp16,depth=int8' -> {branch: precision}. Keys: kind, branch name or 'all'; later entries win."""
    if spec is None or not str(spec).strip():
        return {}
    pairs = []
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ManifestError(f"precision spec {spec!r}: entry {part!r} must look like KEY=PRECISION "
                                f"(e.g. depth=int8)")
        key, value = (s.strip() for s in part.split("=", 1))
        value = value.lower()
        if value not in PRECISIONS:
            raise ManifestError(f"precision spec {spec!r}: {value!r} for {key!r} is not one of {PRECISIONS}")
        pairs.append((key, value))
    targets = resolve_keys([k for k, _ in pairs], manifest)
    result: Dict[str, str] = {}
    for key, value in pairs:
        for name in targets[key]:
            result[name] = value
    return result


def parse_precision(spec: Union[str, Mapping[str, str], None], manifest: "Manifest") -> Dict[str, str]:
    """Branch -> precision: the manifest's choice, overridden by a spec such as 'fp16' (every branch)
    or 'gate=fp16,depth=int8,trunk=fp16' (kinds, branch names or 'all'; later entries win)."""
    out = {b.name: b.precision for b in manifest.branches}
    if isinstance(spec, Mapping):
        spec = ",".join(f"{k}={v}" for k, v in spec.items())
    if spec and "=" not in spec and spec.strip().lower() in PRECISIONS:
        spec = f"all={spec.strip()}"
    out.update(parse_precision_spec(spec, manifest))
    return out


def load_manifest(folder, verify_hashes: bool = True) -> Manifest:
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"model folder {folder} does not exist or is not a directory")
    mpath = folder / "manifest.json"
    if not mpath.is_file():
        raise ManifestError(f"{folder} has no manifest.json: is it a model folder made by `dynmm-edge export`?")
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{mpath} is not valid JSON: {exc}") from None
    return parse_manifest(data, folder, verify_hashes=verify_hashes)

"""Per-branch calibration feeds: the REAL inputs each branch sees, captured in FP32 on ONNX Runtime.

A branch engine is calibrated on what it meets at run time, not on random tensors: depth segment k
sees segment k-1's output, the trunk sees real depth features (full path, depth_present all ones),
the gate sees preprocessed rgb/depth. Feeds are streamed to disk (one .npy per tensor per frame) so
thousands of frames never sit in memory; BranchFeedReader hands them to onnxruntime.quantization.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from dynmm_edge.errors import BackendError, DataError, ManifestError

PRESENT_PREFIX = "depth_feat_"
Progress = Optional[Callable[[str], None]]


def ort_session(path, threads: int = 0):
    """A CPU InferenceSession with quiet logging (threads=0: ONNX Runtime's default)."""
    from dynmm_edge._lazy import require
    ort = require("onnxruntime", "INT8 calibration")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types
        raise BackendError(f"ONNX Runtime cannot load {path}: {exc}") from None


def preprocess_config(manifest):
    from dynmm_edge.data.preprocess import PreprocessConfig
    cfg = dict(manifest.preprocess)
    cfg.setdefault("height", manifest.height)
    cfg.setdefault("width", manifest.width)
    try:
        return PreprocessConfig.from_dict(cfg)
    except ValueError as exc:
        raise ManifestError(f"{manifest.folder}/manifest.json: bad 'preprocess' section: {exc}") from None


def frame_inputs(frame, cfg) -> Dict[str, np.ndarray]:
    """Frame -> {'rgb': [1,3,H,W], 'depth': [1,1,H,W]} float32 through the shared preprocessing."""
    from dynmm_edge.data.preprocess import preprocess_frame
    rgb, depth = preprocess_frame(frame, cfg)
    return {"rgb": np.ascontiguousarray(rgb, np.float32), "depth": np.ascontiguousarray(depth, np.float32)}


class BranchPipeline:
    """Runs the manifest's branch graph on ONNX Runtime CPU at chosen per-branch precisions.

    Paths are executed exactly as the runtime does: the branches listed for the path in order,
    depth features of skipped segments as zeros with depth_present[i] = 0. `files` overrides the
    file of a branch (used to run a freshly quantised model before it is in the manifest).
    """

    def __init__(self, manifest, precision: Optional[Mapping[str, str]] = None,
                 files: Optional[Mapping[str, Path]] = None, threads: int = 0):
        self.manifest = manifest
        self.precision = {b.name: "fp32" for b in manifest.branches}
        self.precision.update(precision or {})
        self.files = dict(files or {})
        self.threads = threads
        self._sessions: Dict[str, Any] = {}
        gate = manifest.gate
        self.gate_branch = gate.get("branch")
        self.gate_output = gate.get("output", "gate_logits")
        self.gate_paths = tuple(int(p) for p in gate.get("paths", manifest.path_values))
        zi = gate.get("zero_inputs", {}) or {}
        self.zero_inputs = set(zi if not isinstance(zi, Mapping) else zi.keys())
        # depth_present slot of each zero-able tensor: the manifest's map, else depth_feat_<i> -> i
        self.present_slot = ({k: int(v) for k, v in zi.items()} if isinstance(zi, Mapping) and
                             all(isinstance(v, int) for v in zi.values()) else {})
        self.present_input = gate.get("present_input")

    def file(self, name: str) -> Path:
        if name in self.files:
            return Path(self.files[name])
        return self.manifest.file_path(self.manifest.branch(name), self.precision[name])

    def session(self, name: str):
        if name not in self._sessions:
            self._sessions[name] = ort_session(self.file(name), self.threads)
        return self._sessions[name]

    def run_branch(self, name: str, env: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        sess = self.session(name)
        feeds = {}
        for i in sess.get_inputs():
            if i.name not in env:
                raise BackendError(f"branch '{name}': input tensor '{i.name}' is not available; have {sorted(env)}")
            feeds[i.name] = env[i.name]
        outs = sess.run(None, feeds)
        return {o.name: v for o, v in zip(sess.get_outputs(), outs)}

    def _filled(self, name: str, env: Dict[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray], bool]:
        """Add zero depth features / depth_present for inputs no earlier branch produced."""
        branch = self.manifest.branch(name)
        extra, synthetic = {}, False
        for spec in branch.inputs:
            if spec.name in env:
                continue
            if spec.name == self.present_input:
                n = spec.concrete(1)[0] if spec.shape else 1
                vec = np.zeros(n, spec.np_dtype)
                slots = self.present_slot or {f"{PRESENT_PREFIX}{i}": i for i in range(n)}
                for tensor, slot in slots.items():
                    if tensor in env and 0 <= slot < n:
                        vec[slot] = 1
                extra[spec.name] = vec.reshape(spec.concrete(1))
                synthetic = True
            elif spec.name in self.zero_inputs or spec.name.startswith(PRESENT_PREFIX):
                extra[spec.name] = np.zeros(spec.concrete(1), spec.np_dtype)
                synthetic = True
        return extra, synthetic

    def run_path(self, inputs: Mapping[str, np.ndarray], path: int, cache: Optional[Dict[str, Dict]] = None,
                 record: Optional[Callable[[str, Dict[str, np.ndarray]], None]] = None) -> Dict[str, np.ndarray]:
        """Run every branch of `path`; returns all tensors. `cache` shares outputs of branches whose inputs
        do not depend on the path (gate, depth segments) between calls for the same frame."""
        if path not in self.manifest.paths:
            raise ManifestError(f"path {path} is not in the manifest (paths: {sorted(self.manifest.paths)})")
        env = dict(inputs)
        for name in self.manifest.paths[path]:
            extra, synthetic = self._filled(name, env)
            if cache is not None and not synthetic and name in cache:
                outs = cache[name]
            else:
                feeds = {**env, **extra}
                if record is not None:
                    record(name, {s.name: feeds[s.name] for s in self.manifest.branch(name).inputs})
                outs = self.run_branch(name, feeds)
                if cache is not None and not synthetic:
                    cache[name] = outs
            env.update(outs)
        return env

    def gate_decision(self, env: Mapping[str, np.ndarray]) -> int:
        """Argmax of the gate logits -> path value (the runtime's default policy)."""
        logits = np.asarray(env[self.gate_output]).reshape(-1)
        if logits.size != len(self.gate_paths):
            raise BackendError(f"gate output '{self.gate_output}' has {logits.size} values, "
                               f"manifest lists {len(self.gate_paths)} paths")
        return int(self.gate_paths[int(np.argmax(logits))])

    def gate_path(self, inputs: Mapping[str, np.ndarray], cache: Optional[Dict[str, Dict]] = None) -> int:
        """Run only the branches up to the gate (on the full path) and return its decision."""
        env = dict(inputs)
        for name in self.manifest.paths[self.manifest.full_path]:
            extra, synthetic = self._filled(name, env)
            if cache is not None and not synthetic and name in cache:
                outs = cache[name]
            else:
                outs = self.run_branch(name, {**env, **extra})
                if cache is not None and not synthetic:
                    cache[name] = outs
            env.update(outs)
            if name == self.gate_branch:
                return self.gate_decision(env)
        raise ManifestError(f"gate branch '{self.gate_branch}' is not on the full path")


def gate_path_fn(manifest) -> Callable:
    """frame -> FP32 gate decision; used by frame selection to stratify by path."""
    pipe = BranchPipeline(manifest)
    cfg = preprocess_config(manifest)
    return lambda frame: pipe.gate_path(frame_inputs(frame, cfg))


# ----------------------------------------------------------------------------------- disk store
class FeedStore:
    """<folder>/<branch>/<tensor>/<index:06d>.npy, one array per tensor per frame."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.counts: Dict[str, int] = {}
        self.inputs: Dict[str, Tuple[str, ...]] = {}

    def write(self, branch: str, index: int, tensors: Mapping[str, np.ndarray]) -> None:
        for name, arr in tensors.items():
            d = self.folder / branch / name
            d.mkdir(parents=True, exist_ok=True)
            np.save(d / f"{index:06d}.npy", np.ascontiguousarray(arr))
        self.inputs.setdefault(branch, tuple(tensors))
        self.counts[branch] = max(self.counts.get(branch, 0), index + 1)

    def load(self, branch: str, index: int) -> Dict[str, np.ndarray]:
        return {n: np.load(self.folder / branch / n / f"{index:06d}.npy") for n in self.inputs[branch]}

    def reader(self, branch: str) -> "BranchFeedReader":
        if branch not in self.counts:
            raise DataError(f"no calibration feeds were captured for branch '{branch}' in {self.folder}")
        return BranchFeedReader(self, branch)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class BranchFeedReader:
    """onnxruntime.quantization CalibrationDataReader (duck-typed: get_next, __len__, set_range).

    set_range lets quantize_static collect in chunks (CalibStridedMinMax), so only a chunk of
    intermediate activations is held at once, whatever the number of frames.
    """

    def __init__(self, store: FeedStore, branch: str):
        self.store, self.branch = store, branch
        self.start, self.end = 0, store.counts[branch]
        self._next = 0

    def __len__(self) -> int:
        return self.store.counts[self.branch]

    def set_range(self, start_index: int, end_index: int) -> None:
        self.start, self.end = int(start_index), min(int(end_index), len(self))
        self._next = self.start

    def rewind(self) -> None:
        self.set_range(0, len(self))

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        if self._next >= self.end:
            return None
        item = self.store.load(self.branch, self._next)
        self._next += 1
        return item

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def capture_feeds(manifest, frames: Iterable, folder, branches: Optional[Sequence[str]] = None,
                  progress: Progress = None) -> FeedStore:
    """Run the FP32 full path on every frame and store the inputs of `branches` (default: all)."""
    wanted = set(branches) if branches else {b.name for b in manifest.branches}
    full = manifest.full_path
    missing = wanted - set(manifest.paths[full])
    if missing:
        raise ManifestError(f"branch(es) {sorted(missing)} are not on the full path {full}: cannot capture their inputs")
    store = FeedStore(folder)
    pipe = BranchPipeline(manifest)
    cfg = preprocess_config(manifest)
    frames = list(frames) if not hasattr(frames, "__len__") else frames
    total = len(frames)
    for idx, frame in enumerate(frames):
        def record(name, tensors, idx=idx):
            if name in wanted:
                store.write(name, idx, tensors)
        pipe.run_path(frame_inputs(frame, cfg), full, record=record)
        if progress and (idx + 1 == total or (idx + 1) % max(1, total // 10) == 0):
            progress(f"captured feeds {idx + 1}/{total} frames")
    return store


def feed_branches(manifest) -> List[str]:
    """Branches on the full path, in execution order."""
    return list(manifest.paths[manifest.full_path])

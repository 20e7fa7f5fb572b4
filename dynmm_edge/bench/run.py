"""The measuring loop behind `dynmm-edge bench`: the same frames through every mode, interleaved.

Modes run in short blocks that rotate (full_depth, rgb_only, dynamic, ... then rotated order), so
drift of the machine (clocks, thermals, other load) hits every mode alike; energy is read per block.
One latency sample = preprocess + every branch of the path + gate decision + labels back on the
host (argmax is inside the trunk graph), measured with the backend synchronised after each branch.
"""
import time
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np

from dynmm_edge.bench.schema import energy_entry, make_report, mode_entry
from dynmm_edge.runtime.policy import make_policy

INCLUDED = {"preprocess": True, "transfers": True, "argmax": True,
            "text": "host frame -> preprocess (resize, normalise) -> upload -> gate -> chosen depth branches -> "
                    "trunk with argmax -> int32 labels downloaded; per-branch times synchronised; frame capture "
                    "and decoding excluded"}


def mode_policies(biases: Sequence[float] = ()) -> Dict[str, str]:
    modes = {"full_depth": "fixed:full", "rgb_only": "fixed:rgb", "dynamic": "argmax"}
    for b in biases:
        modes[f"dynamic_bias_{b:g}"] = f"bias:{b:g}"
    return modes


def run_bench(session, frames: List, *, modes: Optional[Dict[str, str]] = None, warmup: int = 5,
              block: int = 10, fps: Optional[float] = None, meter=None, pipelined: bool = True,
              keep_samples: bool = True, progress=None) -> dict:
    """Benchmark `session` on preloaded `frames`; returns the schema-v1 report dict."""
    modes = modes or mode_policies()
    policies = {name: make_policy(spec) for name, spec in modes.items()}
    m = session.manifest
    names = list(modes)
    _warm_up(session, policies, frames[:warmup])
    samples = _Samples(names)
    n_blocks = (len(frames) + block - 1) // block
    done = 0
    for bi in range(n_blocks):
        chunk = frames[bi * block:(bi + 1) * block]
        order = names[bi % len(names):] + names[:bi % len(names)]
        for name in order:
            session.set_policy(policies[name])
            _run_block(session, name, chunk, samples, fps, meter)
        done += len(chunk)
        if progress:
            progress(done, len(frames))

    report_modes = _mode_entries(m, policies, samples, keep_samples)
    throughput = {"serial_fps": 1000.0 / report_modes["dynamic"]["e2e_ms"]["mean"] if "dynamic" in report_modes else None,
                  "pipelined_fps": None}
    if pipelined and "dynamic" in policies and not fps:
        throughput["pipelined_fps"] = _pipelined_fps(session, frames, policies["dynamic"])
    energy = {"meter": meter.describe() if meter else None}
    if meter:
        for name in names:
            energy[name] = energy_entry(samples.energy_j[name], len(samples.e2e[name]), samples.energy_s[name])
    return make_report(model=_model_entry(session), backend=session.backend.name, precision=_precision_text(session),
                       included=INCLUDED, frames=len(frames), warmup=warmup, modes=report_modes, fps_pacing=fps,
                       throughput=throughput, energy=energy, dispatch_ms=_dispatch_ms(samples.overhead),
                       environment=_environment(session))


def _warm_up(session, policies: Dict, frames: List) -> None:
    """Run every mode on the warm-up frames: first ORT runs allocate, CUDA graphs capture."""
    for policy in policies.values():
        session.set_policy(policy)
        for f in frames:
            session.infer(f)


class _Samples:
    """Per-mode measurements collected over all blocks."""

    def __init__(self, names: Sequence[str]):
        self.e2e = defaultdict(list)
        self.branch_ms = {n: defaultdict(list) for n in names}
        self.overhead = {n: [] for n in names}
        self.paths = {n: Counter() for n in names}
        self.total_macs, self.depth_macs = defaultdict(list), defaultdict(list)
        self.energy_j = {n: 0.0 for n in names}
        self.energy_s = {n: 0.0 for n in names}

    def add(self, name: str, r, manifest) -> None:
        """One inference result of mode `name`."""
        self.e2e[name].append(r.times_ms["total"])
        for b in r.branches_run:
            self.branch_ms[name][b].append(r.times_ms[b])
        self.overhead[name].append(r.times_ms.get("policy", 0.0) + r.times_ms.get("dispatch", 0.0))
        self.paths[name][r.path] += 1
        self.depth_macs[name].append(manifest.depth_macs(r.path))
        self.total_macs[name].append(manifest.total_macs(r.path))


def _run_block(session, name: str, chunk: List, samples: _Samples, fps: Optional[float], meter) -> None:
    """One block of one mode (its policy already set), paced at `fps` when given; energy read around it."""
    e0, t0 = (meter.energy_j() if meter else None), time.monotonic()
    for j, f in enumerate(chunk):
        if fps:
            _sleep_until(t0 + j / fps)
        samples.add(name, session.infer(f), session.manifest)
    if fps:  # the idle gap after the last frame of the block belongs to it too
        _sleep_until(t0 + len(chunk) / fps)
    if meter:
        samples.energy_j[name] += meter.energy_j() - e0
        samples.energy_s[name] += time.monotonic() - t0


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _mode_entries(m, policies: Dict, samples: _Samples, keep_samples: bool) -> dict:
    gate_macs = m.branch(m.gate["branch"]).macs
    report_modes = {}
    for name in policies:
        tm = np.asarray(samples.total_macs[name], dtype=np.float64)
        if not policies[name].needs_gate:
            tm = tm - gate_macs  # fixed modes do not run the gate
        report_modes[name] = mode_entry(samples.e2e[name], samples.branch_ms[name], samples.paths[name],
                                        float(np.mean(samples.depth_macs[name])), float(np.mean(tm)),
                                        keep_samples=keep_samples)
    return report_modes


def _dispatch_ms(overhead: Dict[str, list]) -> Optional[float]:
    """Decision cost = policy (gate logits download + decide) + dispatch beyond what static runs pay."""
    static_overhead = float(np.mean(overhead["full_depth"])) if "full_depth" in overhead else 0.0
    dyn_overhead = float(np.mean(overhead["dynamic"])) if "dynamic" in overhead else None
    return None if dyn_overhead is None else max(dyn_overhead - static_overhead, 0.0)


def _model_entry(session) -> dict:
    m = session.manifest
    return {"name": m.name, "folder": str(m.folder), "input": [m.height, m.width], "paths": list(m.path_values),
            "branch_macs": {b.name: b.macs for b in m.branches},
            "precision": dict(session.precisions)}


def _precision_text(session) -> str:
    values = set(session.precisions.values())
    if len(values) == 1:
        return values.pop()
    return ",".join(f"{k}={v}" for k, v in session.precisions.items())


def _environment(session) -> dict:
    from dynmm_edge.bench.env import environment
    env = environment()
    env["backend"] = session.backend.describe()
    return env


def _pipelined_fps(session, frames, policy) -> float:
    """Throughput with capture, inference and output overlapped on threads (pipeline of `run`)."""
    from dynmm_edge.io.base import ListSource
    from dynmm_edge.runtime.pipeline import run_pipeline
    session.set_policy(policy)
    stats = run_pipeline(ListSource(frames), session.infer, [])
    if stats.stop_reason == "interrupted":  # a partial measurement must not be reported as a result
        from dynmm_edge.signals import Interrupted
        raise Interrupted(stats.signal or 2)
    return float(stats.fps)

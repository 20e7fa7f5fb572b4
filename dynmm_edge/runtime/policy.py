"""Gate policies: turn the gate's logits into the path (number of depth segments) to run.

Each policy is bound to the model's paths and their depth cost (fraction of full-depth MACs), so a
bias is expressed in cost units and means the same on every model.
"""
import math
from typing import Optional, Sequence, Tuple

import numpy as np

from dynmm_edge.errors import DynMMError


class GatePolicy:
    """decide(logits) -> path; observe(result) lets feedback policies adapt."""
    name = "policy"

    def bind(self, paths: Sequence[int], depth_cost: Sequence[float]) -> "GatePolicy":
        self.paths = tuple(int(p) for p in paths)
        self.depth_cost = np.asarray(depth_cost, dtype=np.float64)
        return self

    def decide(self, logits: np.ndarray) -> int:
        raise NotImplementedError

    def observe(self, result) -> None:
        pass

    @property
    def needs_gate(self) -> bool:
        return True

    def describe(self) -> str:
        return self.name


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    m = x.max()
    return x - m - math.log(np.exp(x - m).sum())


class ArgmaxPolicy(GatePolicy):
    """The gate's own choice (DynMM inference)."""
    name = "argmax"

    def decide(self, logits):
        return self.paths[int(np.argmax(np.asarray(logits).reshape(-1)))]


class BiasPolicy(GatePolicy):
    """argmax of log p(path) - bias * depth_cost(path): bias > 0 trades accuracy for compute."""

    def __init__(self, bias: float = 0.0):
        self.bias = float(bias)

    @property
    def name(self):
        return f"bias:{self.bias:g}"

    def scores(self, logits):
        return _log_softmax(logits) - self.bias * self.depth_cost

    def decide(self, logits):
        return self.paths[int(np.argmax(self.scores(logits)))]


class HysteresisPolicy(GatePolicy):
    """Keeps the current path unless another beats it by `margin` (log-prob units): no flicker."""

    def __init__(self, inner: Optional[BiasPolicy] = None, margin: float = 0.5):
        self.inner, self.margin, self.current = inner or BiasPolicy(0.0), float(margin), None

    @property
    def name(self):
        return f"hysteresis:{self.margin:g}" + ("" if self.inner.bias == 0 else f"+{self.inner.name}")

    def bind(self, paths, depth_cost):
        super().bind(paths, depth_cost)
        self.inner.bind(paths, depth_cost)
        self.current = None
        return self

    def decide(self, logits):
        s = self.inner.scores(logits)
        best = int(np.argmax(s))
        if self.current is None or s[best] > s[self.current] + self.margin:
            self.current = best
        return self.paths[self.current]


class FixedPolicy(GatePolicy):
    """Always the same path ('full', 'rgb' or a number); the gate need not run."""

    def __init__(self, which="full"):
        self.which = which

    @property
    def name(self):
        return f"fixed:{self.which}"

    def bind(self, paths, depth_cost):
        super().bind(paths, depth_cost)
        if self.which in ("full", "full_depth"):
            self.path = max(self.paths)
        elif self.which in ("rgb", "rgb_only"):
            self.path = min(self.paths)
        else:
            try:
                p = int(self.which)
            except ValueError:
                raise DynMMError(f"policy fixed:{self.which}: use fixed:full, fixed:rgb or fixed:N") from None
            if p not in self.paths:
                raise DynMMError(f"policy fixed:{p}: this model's paths are {self.paths}")
            self.path = p
        return self

    @property
    def needs_gate(self):
        return False

    def decide(self, logits):
        return self.path


class BudgetPolicy(GatePolicy):
    """Integral controller on the bias that holds a target mean depth cost (fraction of full depth)
    or, with target_ms, a target mean latency. Adapts slowly (gain per frame) so it does not oscillate.
    """

    def __init__(self, target: float, metric: str = "cost", gain: float = 0.5, window: int = 30):
        if metric not in ("cost", "ms"):
            raise DynMMError(f"budget policy metric must be 'cost' or 'ms', got {metric!r}")
        if metric == "cost" and not 0.0 <= target <= 1.0:
            raise DynMMError(f"budget target {target} must be a fraction of full-depth cost in [0, 1]")
        self.target, self.metric, self.gain, self.window = float(target), metric, float(gain), int(window)
        self.inner = BiasPolicy(0.0)
        self.ema = None

    @property
    def name(self):
        unit = "" if self.metric == "cost" else "ms"
        return f"budget{'-ms' if unit else ''}:{self.target:g}"

    @property
    def bias(self):
        return self.inner.bias

    def bind(self, paths, depth_cost):
        super().bind(paths, depth_cost)
        self.inner.bind(paths, depth_cost)
        return self

    def decide(self, logits):
        return self.inner.decide(logits)

    def observe(self, result):
        if self.metric == "cost":
            value = float(self.depth_cost[self.paths.index(result.path)])
        else:
            value = float(result.times_ms.get("total", 0.0))
        alpha = 2.0 / (self.window + 1)
        self.ema = value if self.ema is None else (1 - alpha) * self.ema + alpha * value
        scale = 1.0 if self.metric == "cost" else max(self.target, 1e-6)
        error = (self.ema - self.target) / scale
        self.inner.bias = float(np.clip(self.inner.bias + self.gain * error, -20.0, 20.0))


def make_policy(spec: str) -> GatePolicy:
    """Parse 'argmax', 'bias:0.5', 'hysteresis:0.3[+bias:0.5]', 'fixed:full|rgb|N', 'budget:0.4', 'budget-ms:25'."""
    spec = (spec or "argmax").strip()
    name, _, arg = spec.partition(":")
    if name.startswith("region"):  # region:T, region-share:F, region-entropy:F (tile masks, not paths)
        from dynmm_edge.runtime.region import make_region_policy
        return make_region_policy(spec)
    try:
        if name == "argmax" and not arg:
            return ArgmaxPolicy()
        if name == "bias":
            return BiasPolicy(float(arg))
        if name == "hysteresis":
            margin, _, inner = arg.partition("+")
            inner_policy = make_policy(inner) if inner else BiasPolicy(0.0)
            if not isinstance(inner_policy, BiasPolicy):
                raise DynMMError("hysteresis wraps a bias policy: hysteresis:0.5+bias:1")
            return HysteresisPolicy(inner_policy, float(margin or 0.5))
        if name == "fixed":
            return FixedPolicy(arg or "full")
        if name == "budget":
            return BudgetPolicy(float(arg), "cost")
        if name == "budget-ms":
            return BudgetPolicy(float(arg), "ms")
    except ValueError:
        pass
    raise DynMMError(f"unknown policy {spec!r}; use argmax, bias:B, hysteresis:M[+bias:B], fixed:full|rgb|N, "
                     f"budget:FRACTION, budget-ms:MS, region:T, region-share:F or region-entropy:F")


def is_region_policy(policy) -> bool:
    """True for region:T / region-share:F / region-entropy:F (they choose tiles, not a frame path)."""
    return getattr(policy, "needs_region_gate", None) is not None


def policy_names() -> Tuple[str, ...]:
    return ("argmax", "bias:B", "hysteresis:M", "fixed:full|rgb|N", "budget:F", "budget-ms:MS",
            "region:T", "region-share:F", "region-entropy:F")

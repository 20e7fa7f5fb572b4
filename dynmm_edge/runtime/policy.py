"""Gate policies: turn the gate's logits into the path (number of depth segments) to run.

Each policy is bound to the model's paths and their depth cost c_k (fraction of full-depth MACs,
0 = RGB only, 1 = every depth stage), so every parameter means the same on every model.

THE BIAS (one meaning, one unit, everywhere: `run --policy bias:B`, `bench --bias B`,
`eval --sweep B`): the path chosen is argmax_k  log p_k + B * c_k, where p = softmax(gate logits).
B is in nats per unit of depth cost; POSITIVE B = MORE DEPTH, negative B = less, 0 = the gate's own
argmax. B = +1 makes the full-depth path worth one nat more than RGB-only.

The budget controller (`budget:F`) holds a mean depth cost F by time-sharing the two paths adjacent
to F in cost (never path 0 while a cheaper path than the upper one exists): the frames the gate
wants most depth for get the upper path. Optionally (gate_floor, off by default) frames the gate
itself sends to a path below the lower one with probability >= gate_floor keep that cheaper path;
on the shipped demo gate that helps at budget 0.35 but cannot hold 0.5 (docs/TRAINING.md), so it is
off. A cost ledger keeps the running mean within a few frames of F from the
first frame on (no warm-up transient).
"""
import math
from collections import deque
from typing import Optional, Sequence, Tuple

import numpy as np

from dynmm_edge.errors import DynMMError


class GatePolicy:
    """decide(logits) -> path; observe(result) lets feedback policies adapt."""
    name = "policy"

    def bind(self, paths: Sequence[int], depth_cost: Sequence[float]) -> "GatePolicy":
        self.paths = tuple(int(p) for p in paths)
        self.depth_cost = np.asarray(depth_cost, dtype=np.float64)
        if self.depth_cost.shape != (len(self.paths),) or not np.all(np.isfinite(self.depth_cost)):
            raise DynMMError(f"policy {self.name}: need one finite depth cost per path {self.paths}, "
                             f"got {list(np.ravel(depth_cost))}")
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
    """Over the last axis ([P] or [N, P]), in float64."""
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def biased_scores(logits, depth_cost, bias: float) -> np.ndarray:
    """log softmax(logits) + bias * depth_cost, over the last axis ([P] or [N, P]): THE bias rule,
    shared by the runtime policy, bench and eval (argmax of it is the chosen path index)."""
    return _log_softmax(logits) + float(bias) * np.asarray(depth_cost, dtype=np.float64)


def _finite(spec: str, value: float, lo: float = -math.inf, hi: float = math.inf, what: str = "") -> float:
    value = float(value)
    if not math.isfinite(value) or not lo <= value <= hi:
        rng = what or f"a finite number in [{lo:g}, {hi:g}]"
        raise DynMMError(f"policy {spec!r}: {value!r} is not {rng}")
    return value


class ArgmaxPolicy(GatePolicy):
    """The gate's own choice (DynMM inference)."""
    name = "argmax"

    def decide(self, logits):
        return self.paths[int(np.argmax(np.asarray(logits).reshape(-1)))]


class BiasPolicy(GatePolicy):
    """argmax of log p(path) + bias * depth_cost(path): bias > 0 = more depth (nats per unit cost)."""

    def __init__(self, bias: float = 0.0):
        self.bias = _finite(f"bias:{bias}", bias, what="a finite number (nats per unit depth cost)")

    @property
    def name(self):
        return f"bias:{self.bias:g}"

    def scores(self, logits):
        return biased_scores(np.asarray(logits).reshape(-1), self.depth_cost, self.bias)

    def decide(self, logits):
        return self.paths[int(np.argmax(self.scores(logits)))]


class HysteresisPolicy(GatePolicy):
    """Keeps the current path unless another beats it by `margin` (nats): no flicker."""

    def __init__(self, inner: Optional[BiasPolicy] = None, margin: float = 0.5):
        self.inner = inner or BiasPolicy(0.0)
        self.margin = _finite(f"hysteresis:{margin}", margin, 0.0, math.inf, "a finite margin >= 0 (nats)")
        self.current = None

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


def adjacent_pair(costs: np.ndarray, target: float) -> Tuple[int, int]:
    """Indices (lo, hi) of the paths adjacent to `target` in cost (lo == hi on an exact hit)."""
    order = np.argsort(costs, kind="stable")
    c = costs[order]
    hi_pos = int(np.searchsorted(c, target - 1e-12, side="left"))
    if hi_pos >= len(c):
        return int(order[-1]), int(order[-1])
    if abs(c[hi_pos] - target) <= 1e-12 or hi_pos == 0:
        return int(order[hi_pos]), int(order[hi_pos])
    return int(order[hi_pos - 1]), int(order[hi_pos])


class BudgetPolicy(GatePolicy):
    """Holds a target mean depth cost F (fraction of full depth) by time-sharing the two paths next to
    F in cost, frames ranked by the gate's preference for depth (expected cost under the gate's
    softmax) against a window of recent frames; a cost ledger corrects the share every frame.
    gate_floor (None = off): frames the gate sends with p >= gate_floor to a path cheaper than the
    lower one keep it.
    """

    def __init__(self, target: float, window: int = 64, slack: float = 2.0, gate_floor: Optional[float] = None):
        self.target = _finite(f"budget:{target}", target, 0.0, 1.0,
                              "a fraction of full-depth cost in [0, 1]")
        self.window, self.slack = int(window), float(slack)
        self.gate_floor = None if gate_floor is None else float(gate_floor)
        self.reset()

    def reset(self):
        self.spent, self.frames = 0.0, 0
        self.recent = deque(maxlen=self.window)

    @property
    def name(self):
        return f"budget:{self.target:g}"

    def bind(self, paths, depth_cost):
        super().bind(paths, depth_cost)
        self.lo, self.hi = adjacent_pair(self.depth_cost, self.target)
        self.reset()
        return self

    def _rank(self, s: float) -> float:
        if not self.recent:
            return 0.5
        r = np.asarray(self.recent)
        return float(((r < s).sum() + 0.5 * (r == s).sum()) / len(r))

    def decide(self, logits):
        logits = np.asarray(logits, dtype=np.float64).reshape(-1)
        c, lo, hi = self.depth_cost, self.lo, self.hi
        p = np.exp(_log_softmax(logits))
        s = float(p @ c)  # the gate's preference for depth: expected depth cost under its softmax
        step = max(c[hi] - c[lo], 1e-9)
        self.frames += 1
        owed = self.target * self.frames - self.spent  # cost still allowed after this frame's share
        g = int(np.argmax(p))
        if self.gate_floor is not None and c[g] < c[lo] and p[g] >= self.gate_floor \
                and owed - c[g] > -self.slack * step:
            choice = g  # the gate is sure this frame needs less depth than the lower path
        else:
            # share of upper-path frames needed from now on, from the ledger
            q = float(np.clip((owed - c[lo]) / step, 0.0, 1.0)) if lo != hi else 0.0
            choice = hi if self._rank(s) >= 1.0 - q else lo
            if choice == hi and owed - c[hi] < -self.slack * step:
                choice = lo
            elif choice == lo and owed - c[lo] > self.slack * step:
                choice = hi
        self.recent.append(s)
        self.spent += float(c[choice])
        return self.paths[choice]


class LatencyBudgetPolicy(GatePolicy):
    """Integral controller on the bias that holds a target mean frame time (ms): over time -> less
    depth (the bias goes down), under -> more."""

    def __init__(self, target_ms: float, gain: float = 0.5, window: int = 30):
        self.target = _finite(f"budget-ms:{target_ms}", target_ms, 1e-6, math.inf, "a time in ms > 0")
        self.gain, self.window = float(gain), int(window)
        self.inner = BiasPolicy(0.0)
        self.ema = None

    @property
    def name(self):
        return f"budget-ms:{self.target:g}"

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
        value = float(result.times_ms.get("total", 0.0))
        alpha = 2.0 / (self.window + 1)
        self.ema = value if self.ema is None else (1 - alpha) * self.ema + alpha * value
        error = (self.ema - self.target) / self.target
        self.inner.bias = float(np.clip(self.inner.bias - self.gain * error, -20.0, 20.0))


_USAGE = ("use argmax, bias:B (B > 0 = more depth, nats per unit depth cost), hysteresis:M[+bias:B] (M >= 0), "
          "fixed:full|rgb|N, budget:F (F in [0, 1]), budget-ms:MS (MS > 0), "
          "region:T (T in [0, 1]), region-share:F or region-entropy:F (F in [0, 1]), each optionally "
          "with ,reuse=TAU[,max_age=N] (temporal tile reuse)")


def make_policy(spec: str) -> GatePolicy:
    """Parse 'argmax', 'bias:0.5', 'hysteresis:0.3[+bias:0.5]', 'fixed:full|rgb|N', 'budget:0.4', 'budget-ms:25'.
    Bad numbers (NaN, inf, out of range) raise a one-line DynMMError naming the spec."""
    spec = (spec or "argmax").strip()
    name, _, arg = spec.partition(":")
    if name.startswith("region"):  # region:T, region-share:F, region-entropy:F (tile masks, not paths)
        from dynmm_edge.runtime.region import make_region_policy
        return make_region_policy(spec)
    try:
        if name == "argmax" and not arg:
            return ArgmaxPolicy()
        if name == "bias":
            return BiasPolicy(_finite(spec, arg, what="a finite number (nats per unit depth cost)"))
        if name == "hysteresis":
            margin, _, inner = arg.partition("+")
            inner_policy = make_policy(inner) if inner else BiasPolicy(0.0)
            if not isinstance(inner_policy, BiasPolicy):
                raise DynMMError(f"policy {spec!r}: hysteresis wraps a bias policy: hysteresis:0.5+bias:1")
            return HysteresisPolicy(inner_policy, _finite(spec, margin or 0.5, 0.0, math.inf,
                                                          "a finite margin >= 0 (nats)"))
        if name == "fixed":
            return FixedPolicy(arg or "full")
        if name == "budget":
            return BudgetPolicy(_finite(spec, arg, 0.0, 1.0, "a fraction of full-depth cost in [0, 1]"))
        if name == "budget-ms":
            return LatencyBudgetPolicy(_finite(spec, arg, 1e-6, math.inf, "a time in ms > 0"))
    except ValueError:
        raise DynMMError(f"policy {spec!r}: {arg!r} is not a number; {_USAGE}") from None
    raise DynMMError(f"unknown policy {spec!r}; {_USAGE}")


def is_region_policy(policy) -> bool:
    """True for region:T / region-share:F / region-entropy:F (they choose tiles, not a frame path)."""
    return getattr(policy, "needs_region_gate", None) is not None


def policy_names() -> Tuple[str, ...]:
    return ("argmax", "bias:B", "hysteresis:M", "fixed:full|rgb|N", "budget:F", "budget-ms:MS",
            "region:T", "region-share:F", "region-entropy:F")


def parse_biases(text: str, flag: str = "--bias") -> Tuple[float, ...]:
    """'-1,0,2' -> (-1.0, 0.0, 2.0); NaN, inf or a non-number is a DynMMError naming the flag."""
    out = []
    for item in (t.strip() for t in str(text or "").split(",")):
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            raise DynMMError(f"{flag} {text!r}: {item!r} is not a number; expected e.g. -2,-1,0,1,2") from None
        if not math.isfinite(value):
            raise DynMMError(f"{flag} {text!r}: {item!r} is not finite (nats per unit depth cost)")
        out.append(value)
    return tuple(out)

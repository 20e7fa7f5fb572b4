"""Procedural indoor RGB-D world: ground truth for training, tests and demos without any dataset.

A room (floor, walls, ceiling) with tables, cabinets, boxes, balls and pillars, ray-cast
analytically (planes, axis-aligned boxes, spheres, vertical cylinders) per pixel with a z-buffer,
vectorised in numpy, with a RealSense-like sensor model. Three frame kinds make a gate's job real:

- 'easy': objects have their own saturated colours and textures, distinct from the muted room;
  RGB alone segments them, depth adds little.
- 'camouflaged': one or two objects are painted with whatever lies behind them (the background
  surface's world-coordinate texture, evaluated where the background is hit, with that surface's
  shading), so in RGB they are invisible up to sensor noise; only depth reveals them, and their
  labels differ from the background's.
- 'dark': low light, low contrast and strong noise in RGB; depth (active IR) is unaffected.

Everything is deterministic in (seed, frame index). World: x right, y up, z forward; metres.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

CLASS_NAMES = ("floor", "wall", "ceiling", "table", "cabinet", "box", "ball", "pillar")
NUM_CLASSES = len(CLASS_NAMES)
VOID = 255
PALETTE = (
    (128, 96, 64),    # floor
    (174, 199, 232),  # wall
    (220, 220, 130),  # ceiling
    (255, 127, 14),   # table
    (44, 160, 44),    # cabinet
    (214, 39, 40),    # box
    (148, 103, 189),  # ball
    (23, 190, 207),   # pillar
)
# Valid-pixel depth statistics in millimetres, measured with
#   w = SyntheticWorld(SynthConfig(width=160, height=120, hard_fraction=0.3, seed=s))
#   over frames 0..399 for seeds 0..1 (800 frames): mean / std of depth[depth > 0].
DEPTH_MEAN_MM = 2931.67
DEPTH_STD_MM = 1269.42

HARD_KINDS = ("camouflaged", "dark")
FAILURE_KINDS = ("sunlit", "glass", "black", "far", "motion")
KINDS = ("easy", "camouflaged", "dark", "rich") + FAILURE_KINDS
# World 2: shares of the NOT-hard frames (relative weights; hard_fraction sets camouflaged + dark).
# A stress mix for gating, not a survey: 45 % of the rest has depth that fails or adds nothing.
DEFAULT_KIND_MIX: Tuple[Tuple[str, float], ...] = (
    ("easy", 0.40), ("rich", 0.15), ("sunlit", 0.10), ("glass", 0.10), ("black", 0.10), ("far", 0.08),
    ("motion", 0.07))
WORLDS = (1, 2)
KIND_CAUSES = {
    "easy": "saturated objects on a muted room: RGB does most, depth helps at edges",
    "camouflaged": "objects painted like their background: only depth reveals them",
    "dark": "low light, strong RGB noise: depth (active IR) unaffected",
    "rich": "bright light, vivid objects in well-separated class colours: depth adds nothing",
    "sunlit": "sunlight through a window saturates the IR projector: big holes and noise where it hits",
    "glass": "glass objects: IR passes through, depth = what lies behind, some holes",
    "black": "black fabrics and a glossy floor absorb/mirror the IR pattern: large dropouts",
    "far": "a hall 2.5x larger: walls beyond the 7 m range read 0",
    "motion": "fast pan: depth smeared across edges (mixed depths), mild RGB blur",
}


def parse_kind_mix(text: str) -> Tuple[Tuple[str, float], ...]:
    """'easy=0.4,rich=0.2,sunlit=0.1' -> kind_mix (weights of the not-hard kinds; normalised later).
    Raises ValueError naming the bad item."""
    out = []
    for item in (t.strip() for t in str(text).split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep:
            name, sep, value = item.partition(":")
        try:
            w = float(value)
        except ValueError:
            raise ValueError(f"kind mix item {item!r}: expected KIND=WEIGHT, e.g. easy=0.4") from None
        out.append((name.strip(), w))
    if not out:
        raise ValueError(f"kind mix {text!r} is empty; expected e.g. easy=0.4,rich=0.2,sunlit=0.1")
    return tuple(out)
MOTIONS = ("walk", "still")
_FLOOR, _WALL, _CEILING, _TABLE, _CABINET, _BOX, _BALL, _PILLAR = range(8)
_GOLDEN = 0.6180339887498949


@dataclass(frozen=True)
class SynthConfig:
    """Generator settings. hard_fraction: share of camouflaged + dark frames; dark_share: the part
    of the hard frames that is dark (0.5 = split evenly)."""
    width: int = 320
    height: int = 240
    hard_fraction: float = 0.3
    seed: int = 0
    dark_share: float = 0.5
    hfov_deg: float = 69.0            # RealSense D435 colour camera
    depth_noise_k: float = 0.0025     # depth sigma = k * z^2 (m, z in m)
    max_range_m: float = 7.0          # beyond -> 0 (hole)
    min_range_m: float = 0.2
    edge_hole_rel: float = 0.05       # relative depth jump that makes an edge hole
    edge_hole_prob: float = 0.7
    dark_hole_prob: float = 0.6       # on IR-absorbing (dark/specular) materials
    rgb_noise: float = 0.012          # sigma in [0,1] units
    dark_gain: Tuple[float, float] = (0.06, 0.18)
    dark_noise: float = 0.05
    segment_len: int = 20             # frames per kind segment in sequences
    world: int = 2                    # 1: the original world (easy/camouflaged/dark), bit-identical per seed
    kind_mix: Tuple[Tuple[str, float], ...] = DEFAULT_KIND_MIX  # world 2: weights of the not-hard kinds

    def __post_init__(self):
        if self.width < 8 or self.height < 8:
            raise ValueError(f"SynthConfig size must be >= 8x8, got {self.width}x{self.height}")
        if not 0.0 <= self.hard_fraction <= 1.0:
            raise ValueError(f"SynthConfig.hard_fraction must be in [0, 1], got {self.hard_fraction}")
        if not 0.0 <= self.dark_share <= 1.0:
            raise ValueError(f"SynthConfig.dark_share must be in [0, 1], got {self.dark_share}")
        if self.segment_len < 1:
            raise ValueError("SynthConfig.segment_len must be >= 1")
        if self.world not in WORLDS:
            raise ValueError(f"SynthConfig.world must be one of {WORLDS}, got {self.world!r}")
        easy_side = [k for k in KINDS if k not in HARD_KINDS]
        for name, w in self.kind_mix:
            if name not in easy_side:
                raise ValueError(f"SynthConfig.kind_mix: unknown kind {name!r}; use {', '.join(easy_side)}")
            if not (math.isfinite(float(w)) and float(w) >= 0):
                raise ValueError(f"SynthConfig.kind_mix: weight of {name!r} must be finite and >= 0, got {w!r}")
        if not sum(float(w) for _, w in self.kind_mix) > 0:
            raise ValueError("SynthConfig.kind_mix: the weights must not all be 0")

    def kind_fractions(self) -> Dict[str, float]:
        """Expected share of every kind (sums to 1)."""
        hf = self.hard_fraction
        out = {"camouflaged": hf * (1 - self.dark_share), "dark": hf * self.dark_share}
        if self.world == 1:
            out["easy"] = 1 - hf
            return out
        total = sum(float(w) for _, w in self.kind_mix)
        for name, w in self.kind_mix:
            out[name] = out.get(name, 0.0) + (1 - hf) * float(w) / total
        return out

    @property
    def intrinsics(self) -> Tuple[float, float, float, float]:
        fx = 0.5 * self.width / math.tan(math.radians(self.hfov_deg) / 2)
        return (fx, fx, (self.width - 1) / 2.0, (self.height - 1) / 2.0)


@dataclass
class SynthFrame:
    """One rendered frame: rgb uint8 HxWx3, depth uint16 mm (0 = hole), labels uint8 HxW."""
    index: int
    rgb: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    intrinsics: Tuple[float, float, float, float]
    kind: str
    depth_true_mm: Optional[np.ndarray] = None  # noise-free float depth, for tests
    camo_mask: Optional[np.ndarray] = None      # pixels of camouflaged objects
    timestamp_s: float = 0.0

    def to_frame(self):
        """As the SDK's Frame (depth in mm, labels set, meta carries the kind)."""
        from dynmm_edge.types import Frame
        return Frame(frame_id=self.index, rgb=self.rgb, depth=self.depth, depth_scale_m=0.001,
                     timestamp_s=self.timestamp_s, labels=self.labels, intrinsics=self.intrinsics,
                     meta={"kind": self.kind, "source": "synthetic"})


# ----------------------------------------------------------------------------------- scene model
@dataclass
class _Material:
    c1: np.ndarray                 # base colour, float32 [3] in [0,1]
    c2: np.ndarray                 # second colour of the texture
    texture: str                   # flat | stripes | checker | noise | wood
    scale: float = 0.3             # texture period (m)
    dirs: Optional[np.ndarray] = None  # [3,3] wave vectors for 'noise' / stripe direction in row 0
    absorbs_ir: bool = False       # dark or specular: depth holes


@dataclass
class _Prim:
    kind: str                      # box | sphere | cylinder
    a: np.ndarray                  # box min / sphere centre / cylinder base centre (x, y0, z)
    b: np.ndarray                  # box max / (r, 0, 0) / (r, y1, 0)
    obj: int                       # object index (room surfaces: -1)
    label: int
    mat: int


@dataclass
class _Scene:
    room: np.ndarray               # (Lx, Ly, Lz)
    room_mats: List[int]           # material per surface: x0, x1, floor, ceiling, z0, z1
    prims: List[_Prim]
    mats: List[_Material]
    obj_centres: np.ndarray        # [n_obj, 3]
    camo_candidates: List[int]     # objects that may be camouflaged
    path_c: np.ndarray             # walkway ellipse centre (x, z)
    path_r: np.ndarray             # radii
    light: np.ndarray              # unit vector towards the key light
    ambient: float


def _rgb(h, s, v):
    """HSV in [0,1] -> RGB float32 (vectorised over nothing; tiny)."""
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], np.float32)


def _random_dirs(rng, scale):
    d = rng.normal(size=(3, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return (d * (2 * np.pi / (scale * np.array([1.0, 0.61, 0.37])))[:, None]).astype(np.float32)


def _room_material(rng, surface) -> _Material:
    """Muted, low-saturation materials for the room: objects in easy frames stand out."""
    if surface == "floor":
        h, s, v = rng.uniform(0.05, 0.12), rng.uniform(0.15, 0.35), rng.uniform(0.35, 0.6)
        tex = rng.choice(["wood", "checker", "noise"])
    elif surface == "ceiling":
        h, s, v = rng.uniform(0, 1), rng.uniform(0.0, 0.06), rng.uniform(0.8, 0.92)
        tex = "flat"
    else:
        h, s, v = rng.uniform(0, 1), rng.uniform(0.02, 0.12), rng.uniform(0.62, 0.85)
        tex = rng.choice(["flat", "noise", "stripes"])
    c1 = _rgb(h, s, v)
    c2 = np.clip(c1 * rng.uniform(0.8, 0.92), 0, 1).astype(np.float32)
    scale = float(rng.uniform(0.25, 0.6))
    return _Material(c1, c2, str(tex), scale, _random_dirs(rng, scale))


_OBJ_HUES = {_TABLE: (0.02, 0.09), _CABINET: (0.5, 0.68), _BOX: (0.08, 0.16), _BALL: (0.9, 1.05),
             _PILLAR: (0.3, 0.45)}


def _object_material(rng, label) -> _Material:
    """Saturated class-typical colours with their own textures."""
    lo, hi = _OBJ_HUES[label]
    h = float(rng.uniform(lo, hi)) % 1.0
    s, v = rng.uniform(0.55, 0.95), rng.uniform(0.45, 0.9)
    absorbs = label in (_CABINET, _BALL) and rng.random() < 0.25
    if absorbs:  # black / glossy: the IR pattern does not come back
        v = rng.uniform(0.08, 0.18)
    c1 = _rgb(h, s, v)
    c2 = _rgb((h + rng.uniform(-0.04, 0.04)) % 1.0, s * 0.8, v * rng.uniform(0.55, 0.75))
    tex = str(rng.choice(["flat", "stripes", "checker", "noise", "wood"]))
    scale = float(rng.uniform(0.06, 0.2))
    return _Material(c1, c2, tex, scale, _random_dirs(rng, scale), absorbs)


class _SceneBuilder:
    """Builds one room step by step; the random draws happen in exactly the order of the original
    single-function generator, so every seed gives the same scene as before the split."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        L = np.array([rng.uniform(5.0, 7.5), rng.uniform(2.5, 3.0), rng.uniform(5.0, 8.0)], np.float32)
        self.L = L
        wall = _room_material(rng, "wall")
        self.mats: List[_Material] = [wall, _room_material(rng, "floor"), _room_material(rng, "ceiling")]
        accent = _room_material(rng, "wall") if rng.random() < 0.5 else wall
        self.mats.append(accent)
        self.room_mats = [0, 3 if rng.random() < 0.5 else 0, 1, 2, 0, 0]
        self.path_c = np.array([L[0] / 2, L[2] / 2], np.float32)
        self.path_r = np.array([L[0] / 2 - 1.3, L[2] / 2 - 1.3], np.float32)
        ang = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        self.path_pts = self.path_c + self.path_r * np.stack([np.cos(ang), np.sin(ang)], 1)
        self.prims: List[_Prim] = []
        self.centres: List[np.ndarray] = []
        self.footprints: List[np.ndarray] = []
        self.camo: List[int] = []
        self.table_tops: List[tuple] = []

    def clear(self, x0, z0, x1, z1, margin=0.45) -> bool:
        L = self.L
        if x0 < 0.02 or z0 < 0.02 or x1 > L[0] - 0.02 or z1 > L[2] - 0.02:
            return False
        px, pz = self.path_pts[:, 0], self.path_pts[:, 1]
        if np.any((px > x0 - margin) & (px < x1 + margin) & (pz > z0 - margin) & (pz < z1 + margin)):
            return False
        for f in self.footprints:
            if x0 < f[2] + 0.05 and x1 > f[0] - 0.05 and z0 < f[3] + 0.05 and z1 > f[1] - 0.05:
                return False
        return True

    def _candidate(self, sx, sz, where):
        rng, L, path_c, path_r = self.rng, self.L, self.path_c, self.path_r
        if where == "inner":  # inside the ellipse: its inscribed rectangle, shrunk by the margin
            hx, hz = path_r[0] * 0.7 - 0.45, path_r[1] * 0.7 - 0.45
            if 2 * hx < sx or 2 * hz < sz:
                return None
            return (rng.uniform(path_c[0] - hx, path_c[0] + hx - sx),
                    rng.uniform(path_c[1] - hz, path_c[1] + hz - sz))
        if where == "wall":
            side = rng.integers(4)
            if side < 2:
                x = 0.03 if side == 0 else L[0] - 0.03 - sx
                return x, rng.uniform(0.05, L[2] - sz - 0.05)
            z = 0.03 if side == 2 else L[2] - 0.03 - sz
            return rng.uniform(0.05, L[0] - sx - 0.05), z
        # outer band between walkway and walls
        return rng.uniform(0.05, L[0] - sx - 0.05), rng.uniform(0.05, L[2] - sz - 0.05)

    def place(self, sx, sz, where):
        """Random footprint (x0, z0, x1, z1) of size sx x sz: inside the walkway or along a wall."""
        for _ in range(40):
            xz = self._candidate(sx, sz, where)
            if xz is None:
                return None
            x, z = xz
            if self.clear(x, z, x + sx, z + sz):
                self.footprints.append(np.array([x, z, x + sx, z + sz], np.float32))
                return float(x), float(z)
        return None

    def add_obj(self, label, parts, centre, camo_ok=True):
        oid = len(self.centres)
        mat = len(self.mats)
        m = _object_material(self.rng, label)
        self.mats.append(m)
        for kind, a, b in parts:
            self.prims.append(_Prim(kind, np.asarray(a, np.float32), np.asarray(b, np.float32), oid, label, mat))
        self.centres.append(np.asarray(centre, np.float32))
        if camo_ok and not m.absorbs_ir:
            self.camo.append(oid)
        return oid

    def add_tables(self):
        rng = self.rng
        for _ in range(int(rng.integers(1, 3))):
            sx, sz, h = rng.uniform(0.8, 1.4), rng.uniform(0.6, 0.9), rng.uniform(0.7, 0.8)
            p = self.place(sx, sz, "inner" if not self.table_tops else "outer")
            if p is None:
                continue
            x, z = p
            top_t = 0.04
            parts = [("box", (x, h - top_t, z), (x + sx, h, z + sz))]
            lw = 0.05
            for lx, lz in ((x + 0.04, z + 0.04), (x + sx - 0.04 - lw, z + 0.04), (x + 0.04, z + sz - 0.04 - lw),
                           (x + sx - 0.04 - lw, z + sz - 0.04 - lw)):
                parts.append(("box", (lx, 0.0, lz), (lx + lw, h - top_t, lz + lw)))
            self.add_obj(_TABLE, parts, (x + sx / 2, h, z + sz / 2))
            self.table_tops.append((x, z, sx, sz, h))

    def add_cabinets(self):
        rng = self.rng
        for _ in range(int(rng.integers(1, 3))):
            sx, sz, h = rng.uniform(0.5, 1.2), rng.uniform(0.4, 0.6), rng.uniform(0.8, 2.0)
            if rng.random() < 0.5:
                sx, sz = sz, sx
            p = self.place(sx, sz, "wall")
            if p is None:
                continue
            x, z = p
            self.add_obj(_CABINET, [("box", (x, 0.0, z), (x + sx, h, z + sz))], (x + sx / 2, h / 2, z + sz / 2))

    def add_boxes(self):
        rng = self.rng
        for _ in range(int(rng.integers(1, 4))):
            s = rng.uniform(0.25, 0.55, size=3)
            if self.table_tops and rng.random() < 0.4:  # on a table
                x, z, tsx, tsz, h = self.table_tops[int(rng.integers(len(self.table_tops)))]
                s = np.minimum(s, [tsx * 0.5, 0.4, tsz * 0.6])
                bx = rng.uniform(x + 0.02, x + tsx - s[0] - 0.02)
                bz = rng.uniform(z + 0.02, z + tsz - s[2] - 0.02)
                y0 = h
            else:
                p = self.place(s[0], s[2], "outer" if rng.random() < 0.6 else "inner")
                if p is None:
                    continue
                bx, bz = p
                y0 = 0.0
            self.add_obj(_BOX, [("box", (bx, y0, bz), (bx + s[0], y0 + s[1], bz + s[2]))],
                         (bx + s[0] / 2, y0 + s[1] / 2, bz + s[2] / 2))

    def add_round(self):
        """Balls, then pillars."""
        rng, L = self.rng, self.L
        for _ in range(int(rng.integers(1, 3))):
            r = rng.uniform(0.12, 0.3)
            p = self.place(2 * r, 2 * r, "outer" if rng.random() < 0.5 else "inner")
            if p is None:
                continue
            x, z = p
            c = (x + r, r, z + r)
            self.add_obj(_BALL, [("sphere", c, (r, 0, 0))], c)
        for _ in range(int(rng.integers(0, 3))):
            r = rng.uniform(0.12, 0.25)
            p = self.place(2 * r, 2 * r, "outer")
            if p is None:
                continue
            x, z = p
            self.add_obj(_PILLAR, [("cylinder", (x + r, 0.0, z + r), (r, L[1], 0))], (x + r, 1.4, z + r))

    def build(self) -> _Scene:
        rng = self.rng
        light = np.array([rng.uniform(-0.6, 0.6), 1.0, rng.uniform(-0.6, 0.6)], np.float32)
        light /= np.linalg.norm(light)
        return _Scene(self.L, self.room_mats, self.prims, self.mats,
                      np.array(self.centres, np.float32).reshape(-1, 3), self.camo,
                      self.path_c, self.path_r, light, float(rng.uniform(0.35, 0.5)))


def _make_scene(rng: np.random.Generator) -> _Scene:
    b = _SceneBuilder(rng)
    b.add_tables()
    b.add_cabinets()
    b.add_boxes()
    b.add_round()
    return b.build()


# --------------------------------------------------------------------------------------- camera
def _look_at(eye: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """Camera-to-world rotation [3,3]: columns = camera right, down, forward in world coordinates."""
    f = target - eye
    f = f / np.linalg.norm(f)
    up = np.array([0.0, 1.0, 0.0])
    r = np.cross(f, up)  # right-handed camera: right x down = forward
    r = r / max(np.linalg.norm(r), 1e-6)
    d = np.cross(f, r)  # down
    if roll:
        c, s = math.cos(roll), math.sin(roll)
        r, d = c * r + s * d, -s * r + c * d
    return np.stack([r, d, f], 1).astype(np.float32)


# ----------------------------------------------------------------------------------- ray casting
def _isect_box(o, d, inv, lo, hi):
    """Slab test on component arrays d = (dx, dy, dz), inv = 1/d; entry t (inf on miss / behind)."""
    tn = tf = None
    for k in range(3):
        t1 = (lo[k] - o[k]) * inv[k]
        t2 = (hi[k] - o[k]) * inv[k]
        lo_t, hi_t = np.minimum(t1, t2), np.maximum(t1, t2)
        tn = lo_t if tn is None else np.maximum(tn, lo_t)
        tf = hi_t if tf is None else np.minimum(tf, hi_t)
    hit = (tf >= tn) & (tn > 1e-4)
    return np.where(hit, tn, np.inf)


def _isect_sphere(o, d, c, r):
    oc = o - c
    b = d[0] * oc[0] + d[1] * oc[1] + d[2] * oc[2]
    a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    disc = b * b - a * float(oc @ oc - r * r)
    t = (-b - np.sqrt(np.maximum(disc, 0))) / a
    return np.where((disc >= 0) & (t > 1e-4), t, np.inf)


def _isect_cylinder(o, d, base, r, y1):
    """Vertical cylinder (x, z) = base, y in [base_y, y1]: side only (caps touch floor/ceiling)."""
    ox, oz = o[0] - base[0], o[2] - base[2]
    dx, dz = d[0], d[2]
    a = dx * dx + dz * dz
    b = dx * ox + dz * oz
    disc = b * b - a * (ox * ox + oz * oz - r * r)
    t = (-b - np.sqrt(np.maximum(disc, 0))) / np.maximum(a, 1e-12)
    y = o[1] + t * d[1]
    ok = (disc >= 0) & (t > 1e-4) & (y >= base[1]) & (y <= y1)
    return np.where(ok, t, np.inf)


def _prim_bounds(p: _Prim):
    if p.kind == "box":
        return p.a, p.b
    r = p.b[0]
    if p.kind == "sphere":
        return p.a - r, p.a + r
    return np.array([p.a[0] - r, p.a[1], p.a[2] - r]), np.array([p.a[0] + r, p.b[1], p.a[2] + r])


def _screen_rect(lo, hi, eye, R, K, W, H):
    """Pixel rectangle (y0, y1, x0, x1) covering a world AABB, or None when fully behind; the
    full image if the box straddles the camera plane."""
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    cam = (corners - eye) @ R  # world -> camera (R columns are camera axes)
    if np.all(cam[:, 2] <= 0.05):
        return None
    if np.any(cam[:, 2] <= 0.05):
        return 0, H, 0, W
    fx, fy, cx, cy = K
    u = fx * cam[:, 0] / cam[:, 2] + cx
    v = fy * cam[:, 1] / cam[:, 2] + cy
    x0, x1 = max(int(np.floor(u.min())) - 1, 0), min(int(np.ceil(u.max())) + 2, W)
    y0, y1 = max(int(np.floor(v.min())) - 1, 0), min(int(np.ceil(v.max())) + 2, H)
    if x0 >= x1 or y0 >= y1:
        return None
    return y0, y1, x0, x1


def _texture(m: _Material, p: np.ndarray) -> np.ndarray:
    """World-coordinate procedural texture: colour [N,3] for hit points p [N,3]."""
    if m.texture == "flat":
        return np.broadcast_to(m.c1, p.shape)
    if m.texture == "stripes":
        f = 0.5 + 0.5 * np.sin(p @ m.dirs[0])
        f = (f > 0.5).astype(np.float32) * 0.8 + 0.2 * f
    elif m.texture == "checker":
        q = np.floor(p / m.scale).astype(np.int64)
        f = ((q[:, 0] + q[:, 1] + q[:, 2]) & 1).astype(np.float32)
    elif m.texture == "wood":
        s = p @ m.dirs[1]
        f = 0.5 + 0.5 * np.sin(4.0 * s + 1.5 * np.sin(p @ m.dirs[2]))
    else:  # noise: sum of three oriented waves
        w = p @ m.dirs.T
        f = (np.sin(w[:, 0]) + 0.6 * np.sin(w[:, 1]) + 0.4 * np.sin(w[:, 2])) / 4.0 + 0.5
    f = f.astype(np.float32)[:, None]
    return m.c1 * (1 - f) + m.c2 * f


_ROOM_NORMALS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float32)


def _shade(scene: _Scene, o, d, t_vis, prim_vis):
    """(hit points [H,W,3], linear colour [H,W,3]) of the visible surfaces: texture x Lambert x lamp."""
    H, W = t_vis.shape
    pts = np.stack([o[k] + d[k] * t_vis for k in range(3)], -1)
    img = np.empty((H, W, 3), np.float32)
    normal = np.empty((H, W, 3), np.float32)
    flat_ids = prim_vis.ravel()
    pf, nf, cf = pts.reshape(-1, 3), normal.reshape(-1, 3), img.reshape(-1, 3)
    room_n = _ROOM_NORMALS
    for k in np.unique(flat_ids):
        idx = np.flatnonzero(flat_ids == k)
        pk = pf[idx]
        if k < 0:
            s = int(k) + 6
            m = scene.mats[scene.room_mats[s]]
            nf[idx] = room_n[s]
        else:
            p = scene.prims[int(k)]
            m = scene.mats[p.mat]
            if p.kind == "sphere":
                nf[idx] = (pk - p.a) / p.b[0]
            elif p.kind == "cylinder":
                n = pk - p.a
                n[:, 1] = 0
                nf[idx] = n / p.b[0]
            else:
                dist = np.concatenate([np.abs(pk - p.a), np.abs(pk - p.b)], 1)
                face = dist.argmin(1)
                nf[idx] = room_n[[1, 3, 5, 0, 2, 4]][face] * 1.0  # outward normals
        cf[idx] = _texture(m, pk)
    lt = scene.light
    ndl = normal[..., 0] * lt[0] + normal[..., 1] * lt[1] + normal[..., 2] * lt[2]
    shade = scene.ambient + (1 - scene.ambient) * np.clip(ndl, 0, 1)
    # soft distance falloff from a ceiling lamp above the room centre
    lamp = np.array([scene.path_c[0], scene.room[1], scene.path_c[1]], np.float32)
    r2 = sum((pts[..., k] - lamp[k]) ** 2 for k in range(3))
    shade = shade * (0.75 + 0.25 * np.exp(-r2 / 18.0))
    img *= shade[..., None]
    return pts, img


def _object_mask(scene: _Scene, prim_geom, objs) -> np.ndarray:
    if not len(objs):
        return np.zeros(prim_geom.shape, bool)
    return np.isin(prim_geom, [k for k, p in enumerate(scene.prims) if p.obj in objs])


# ------------------------------------------------------------------------ world 2: depth failures
# Each failure kind has a physical cause; rates are a stress mix for gating (see DEFAULT_KIND_MIX),
# not a survey of real deployments.
def _copy_scene(scene: _Scene) -> _Scene:
    return replace(scene, prims=list(scene.prims), mats=list(scene.mats), room_mats=list(scene.room_mats),
                   obj_centres=scene.obj_centres.copy(), camo_candidates=list(scene.camo_candidates))


_RICH_HUES = {_TABLE: 0.03, _CABINET: 0.6, _BOX: 0.15, _BALL: 0.95, _PILLAR: 0.38}


def _rich_scene(scene: _Scene, fx) -> _Scene:
    """Bright light and vivid, flat objects in well-separated class colours on the usual room:
    RGB alone separates everything, depth adds nothing."""
    s = _copy_scene(scene)
    for p in s.prims:
        m = s.mats[p.mat]
        if m.absorbs_ir:
            continue
        h = (_RICH_HUES[p.label] + fx.uniform(-0.015, 0.015)) % 1.0
        c = _rgb(h, fx.uniform(0.8, 0.95), fx.uniform(0.8, 0.95))
        s.mats[p.mat] = replace(m, c1=c, c2=c, texture="flat")
    return replace(s, ambient=0.6)


def _black_scene(scene: _Scene) -> _Scene:
    """Black/dyed fabrics and glossy floor: the IR pattern does not come back (large dropouts)."""
    s = _copy_scene(scene)
    for i in range(4, len(s.mats)):
        m = s.mats[i]
        s.mats[i] = replace(m, c1=(m.c1 * 0.6).astype(np.float32), c2=(m.c2 * 0.6).astype(np.float32),
                            absorbs_ir=True)
    floor = s.room_mats[2]
    s.mats[floor] = replace(s.mats[floor], absorbs_ir=True)
    return s


def _far_scene(scene: _Scene) -> _Scene:
    """A hall 2.5x larger with the furniture in its middle: walls lie beyond the sensor's range."""
    s = _copy_scene(scene)
    L = scene.room
    off = np.array([0.75 * L[0], 0.0, 0.75 * L[2]], np.float32)
    prims = []
    for p in scene.prims:
        b = p.b + off if p.kind == "box" else p.b
        prims.append(replace(p, a=p.a + off, b=b))
    room = np.array([2.5 * L[0], L[1], 2.5 * L[2]], np.float32)
    return replace(s, room=room, prims=prims, obj_centres=scene.obj_centres + off,
                   path_c=scene.path_c + off[[0, 2]])


def scene_for_kind(scene: _Scene, kind: str, fx) -> _Scene:
    if kind == "rich":
        return _rich_scene(scene, fx)
    if kind == "black":
        return _black_scene(scene)
    if kind == "far":
        return _far_scene(scene)
    return scene


def _sun_mask(scene: _Scene, pts, target, fx) -> np.ndarray:
    """Sunlight through a window: a shaft along direction u lights every visible point whose ray
    towards the sun leaves through the window (centred where the shaft through `target` meets
    a wall). No shadows: a cheap, plausible footprint on floor, furniture and walls."""
    az, el = fx.uniform(0, 2 * np.pi), fx.uniform(0.35, 0.9)
    u = np.array([math.cos(az) * math.cos(el), math.sin(el), math.sin(az) * math.cos(el)], np.float32)
    axis = 0 if abs(u[0]) > abs(u[2]) else 2
    wall = scene.room[axis] if u[axis] > 0 else 0.0
    t0 = (wall - target[axis]) / u[axis]
    q0 = target + t0 * u
    other = 2 - axis
    half = fx.uniform(0.7, 1.4, size=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (wall - pts[..., axis]) / u[axis]
        q_other = pts[..., other] + t * u[other]
        q_y = pts[..., 1] + t * u[1]
    return (t > 0) & (np.abs(q_other - q0[other]) < half[0]) & (np.abs(q_y - q0[1]) < half[1] + 0.6)


def _pre_sensor_effects(scene, kind, o, d, img, pts, t_vis, t_geom, prim_geom, glass_mask, fx):
    """Effects on the light and on the true range that the sensors then see."""
    z, lit = t_geom, None
    if kind == "glass" and glass_mask.any():
        # glass: RGB sees a tinted, glossy pane (its own colour blended over what is behind it);
        # the IR pattern passes through, so depth is the depth of what lies behind
        _, own = _shade(scene, o, d, t_geom, prim_geom)
        glossy = 0.08 * fx.random() + 0.1 * (0.5 + 0.5 * np.sin(pts[..., 0] * 3.0 + pts[..., 2] * 2.0))
        mixed = 0.5 * own + 0.4 * img + glossy[..., None]
        img = np.where(glass_mask[..., None], mixed, img).astype(np.float32)
        z = np.where(glass_mask, t_vis, t_geom).astype(np.float32)
    if kind == "sunlit":
        H, W = t_vis.shape
        centre = pts[H // 2, W // 2]
        lit = _sun_mask(scene, pts, centre, fx)
        boost = np.float32(fx.uniform(1.8, 2.6))
        img = np.where(lit[..., None], img * boost + 0.25, img).astype(np.float32)
    return img, z, lit


def _blotches(fx, shape, cell, prob):
    H, W = shape
    field = fx.random(((H + cell - 1) // cell, (W + cell - 1) // cell)) < prob
    return np.repeat(np.repeat(field, cell, 0), cell, 1)[:H, :W]


def _motion_smear(a: np.ndarray, length: int, sign: int) -> np.ndarray:
    """Average of `length` horizontally shifted copies (camera pan during the exposure)."""
    acc = np.zeros(a.shape, np.float32)
    for s in range(length):
        acc += np.roll(a, sign * s, axis=1).astype(np.float32)
    return acc / length


def _post_sensor_effects(kind, rgb, depth, z, lit, glass_mask, fx, cfg):
    """Sensor-level failures: saturation holes, glass holes, smear."""
    H, W = depth.shape
    if kind == "sunlit" and lit is not None:
        # ambient IR swamps the projector pattern: big holes where the sun hits, noise elsewhere
        holes = lit & (_blotches(fx, (H, W), 6, 0.75) | (fx.random((H, W)) < 0.5))
        noise = fx.standard_normal((H, W)).astype(np.float32) * (4 * cfg.depth_noise_k * z * z) * 1000.0
        noisy = np.clip(depth.astype(np.float32) + noise, 1, 65535).astype(np.uint16)
        depth = np.where(depth > 0, noisy, 0).astype(np.uint16)
        depth[holes] = 0
    elif kind == "glass":
        depth[glass_mask & _blotches(fx, (H, W), 4, 0.35)] = 0
    elif kind == "motion":
        sign = 1 if fx.random() < 0.5 else -1
        n_d = max(2, int(round(W * fx.uniform(0.03, 0.06))))
        n_c = max(2, n_d // 3)
        valid = (depth > 0).astype(np.float32)
        mean = _motion_smear(depth, n_d, sign)
        cover = _motion_smear(valid, n_d, sign)
        smeared = np.where(cover > 0.6, mean / np.maximum(cover, 1e-6), 0)  # mixed fg/bg depths
        depth = np.clip(np.round(smeared), 0, 65535).astype(np.uint16)
        rgb = np.clip(_motion_smear(rgb, n_c, sign) + 0.5, 0, 255).astype(np.uint8)
    return rgb, depth


class SyntheticWorld:
    """Deterministic procedural RGB-D frames: frame(i) for i.i.d. data, sequence(n) for video."""

    def __init__(self, cfg: SynthConfig = SynthConfig()):
        self.cfg = cfg
        W, H = cfg.width, cfg.height
        fx, fy, cx, cy = cfg.intrinsics
        u = (np.arange(W, dtype=np.float32) - cx) / fx
        v = (np.arange(H, dtype=np.float32) - cy) / fy
        self._u, self._v = u[None, :], v[:, None]  # camera ray (u, v, 1): t is the optical-axis depth
        self._scene_cache: Dict[int, _Scene] = {}

    # -------------------------------------------------------------------------------- public API
    def kind_of(self, i: int) -> str:
        """Frame kind from a low-discrepancy sequence: any window of n frames has the requested
        mix to within about 1/n (random draws would need thousands of frames)."""
        cfg = self.cfg
        u = (i * _GOLDEN + (cfg.seed * 0.7548776662466927) % 1.0) % 1.0
        if u >= cfg.hard_fraction:
            if cfg.world == 1:
                return "easy"
            v = (u - cfg.hard_fraction) / max(1.0 - cfg.hard_fraction, 1e-12)
            total = sum(float(w) for _, w in cfg.kind_mix)
            acc = 0.0
            for name, w in cfg.kind_mix:
                acc += float(w) / total
                if v < acc:
                    return name
            return [n for n, w in cfg.kind_mix if float(w) > 0][-1]
        return "dark" if u >= cfg.hard_fraction * (1.0 - cfg.dark_share) else "camouflaged"

    def frame(self, i: int) -> SynthFrame:
        """Independent frame i: its own scene and camera; deterministic in (seed, i)."""
        i = int(i)
        rng = np.random.default_rng([self.cfg.seed, i, 1])
        scene = _make_scene(rng)
        kind = self.kind_of(i)
        fx = np.random.default_rng([self.cfg.seed, i, 5]) if self.cfg.world == 2 else None
        if fx is not None:
            scene = scene_for_kind(scene, kind, fx)
        special = kind in ("camouflaged", "glass")
        # aim at an object (a camouflage / glass candidate) from a point on the walkway
        cands = scene.camo_candidates if (special and scene.camo_candidates) else \
            list(range(len(scene.obj_centres)))
        eye, target = self._random_pose(rng, scene, cands)
        chosen = []
        if special and scene.camo_candidates:
            chosen = [self._aimed]
            others = [c for c in scene.camo_candidates if c != self._aimed]
            if others and rng.random() < 0.5:
                chosen.append(int(rng.choice(others)))
        R = _look_at(eye, target, roll=float(rng.uniform(-0.05, 0.05)))
        camo, glass = (chosen, []) if kind == "camouflaged" else ([], chosen)
        return self._render(scene, eye, R, kind, camo, rng, index=i, timestamp=0.0, fx=fx, glass_objs=glass)

    def sequence(self, n: int, start: int = 0, motion: str = "walk", fps: float = 30.0) -> "SynthSequence":
        """n video frames in one fixed scene (chosen by (seed, start)); the camera walks smoothly
        along a path through the room ('walk') or stands still ('still'). Frame kinds change in
        segments of cfg.segment_len frames with the configured mix."""
        if motion not in MOTIONS:
            raise ValueError(f"motion must be one of {MOTIONS}, got {motion!r}")
        return SynthSequence(self, int(n), int(start), motion, float(fps))

    # ------------------------------------------------------------------------------- internals
    def _random_pose(self, rng, scene: _Scene, cands: Sequence[int]):
        ang = rng.uniform(0, 2 * np.pi)
        pos = scene.path_c + scene.path_r * np.array([np.cos(ang), np.sin(ang)])
        eye = np.array([pos[0], rng.uniform(1.1, 1.7), pos[1]], np.float32)
        if len(cands):
            # prefer a candidate at a reasonable distance
            dist = [np.linalg.norm(scene.obj_centres[c] - eye) for c in cands]
            order = [c for _, c in sorted(zip(dist, cands))]
            good = [c for c in order if 1.0 < np.linalg.norm(scene.obj_centres[c] - eye) < 4.5] or order
            self._aimed = int(good[int(rng.integers(len(good)))])
            target = scene.obj_centres[self._aimed] + rng.normal(0, 0.15, 3).astype(np.float32)
        else:
            self._aimed = -1
            target = np.array([scene.path_c[0], 0.8, scene.path_c[1]], np.float32)
        if np.linalg.norm(target - eye) < 0.3:
            target = target + np.array([0.5, -0.2, 0.5], np.float32)
        return eye, target

    def _scene_for_sequence(self, start: int) -> _Scene:
        if start not in self._scene_cache:
            self._scene_cache[start] = _make_scene(np.random.default_rng([self.cfg.seed, start, 2]))
        return self._scene_cache[start]

    def _sequence_frame(self, start: int, j: int, motion: str, fps: float) -> SynthFrame:
        cfg = self.cfg
        scene = self._scene_for_sequence(start)
        seg = j // cfg.segment_len
        kind = self.kind_of(start + seg * 7919)  # per segment, same mix
        fx = None
        if cfg.world == 2:  # the scene change of a kind is fixed per segment, sensor effects per frame
            scene = scene_for_kind(scene, kind, np.random.default_rng([cfg.seed, start, seg, 6]))
            fx = np.random.default_rng([cfg.seed, start, j, 7])
        srng = np.random.default_rng([cfg.seed, start, 3])
        phase = float(srng.uniform(0, 2 * np.pi))
        speed = 0.45  # m/s along the walkway
        perim = 2 * np.pi * float(np.sqrt((scene.path_r ** 2).mean()))
        tt = (j if motion == "walk" else 0) / fps
        a = phase + 2 * np.pi * speed * tt / perim
        pos = scene.path_c + scene.path_r * np.array([np.cos(a), np.sin(a)])
        eye = np.array([pos[0], 1.4 + 0.03 * math.sin(2 * np.pi * 1.8 * tt), pos[1]], np.float32)
        # look across the room, sweeping left/right slowly
        sweep = 0.6 * math.sin(0.35 * tt + phase)
        ax = a + np.pi + sweep
        target = np.array([scene.path_c[0] + 1.2 * math.cos(ax), 0.7, scene.path_c[1] + 1.2 * math.sin(ax)],
                          np.float32)
        camo = scene.camo_candidates[:2] if kind == "camouflaged" else []
        glass = scene.camo_candidates[:2] if kind == "glass" else []
        rng = np.random.default_rng([cfg.seed, start, j, 4])  # sensor noise differs per frame
        R = _look_at(eye, target)
        return self._render(scene, eye, R, kind, camo, rng, index=start + j, timestamp=j / fps, fx=fx,
                            glass_objs=glass)

    def _rays(self, R):
        """World ray directions as three HxW planes (struct of arrays) and their reciprocals."""
        Rf = R.astype(np.float32)
        d = tuple((Rf[k, 0] * self._u + Rf[k, 1] * self._v + Rf[k, 2]).astype(np.float32) for k in range(3))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            inv = tuple(np.float32(1.0) / dk for dk in d)
        return d, inv

    def _cast(self, scene: _Scene, o, R, d, inv, hidden):
        """Z-buffer: (t_vis, prim_vis) without the `hidden` objects (what RGB shows for camouflage,
        what lies behind glass) and (t_geom, prim_geom) with every object (labels, depth)."""
        cfg = self.cfg
        H, W, K = cfg.height, cfg.width, cfg.intrinsics
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # room, seen from inside: exit distance per axis; surface ids 0..5 = x0, x1, floor, ceiling, z0, z1
            L = scene.room
            tax = []
            for k in range(3):
                tk = (np.where(d[k] > 0, L[k], 0.0).astype(np.float32) - o[k]) * inv[k]
                tax.append(np.where(np.isfinite(tk) & (tk > 0), tk, np.inf).astype(np.float32))
            use_y = tax[1] < tax[0]
            t_vis = np.where(use_y, tax[1], tax[0])
            surf = np.where(use_y, 2 + (d[1] > 0), 0 + (d[0] > 0))
            use_z = tax[2] < t_vis
            t_vis = np.where(use_z, tax[2], t_vis)
            prim_vis = (np.where(use_z, 4 + (d[2] > 0), surf) - 6).astype(np.int16)  # room: -6..-1
            t_geom = t_vis.copy()
            prim_geom = prim_vis.copy()
            order = sorted(range(len(scene.prims)), key=lambda k: scene.prims[k].obj in hidden)
            for k in order:
                p = scene.prims[k]
                lo, hi = _prim_bounds(p)
                rect = _screen_rect(lo, hi, o, R, K, W, H)
                if rect is None:
                    continue
                y0, y1, x0, x1 = rect
                dd = tuple(dk[y0:y1, x0:x1] for dk in d)
                if p.kind == "box":
                    t = _isect_box(o, dd, tuple(ik[y0:y1, x0:x1] for ik in inv), p.a, p.b)
                elif p.kind == "sphere":
                    t = _isect_sphere(o, dd, p.a, p.b[0])
                else:
                    t = _isect_cylinder(o, dd, p.a, p.b[0], p.b[1])
                tg = t_geom[y0:y1, x0:x1]
                win = t < tg
                if not win.any():
                    continue
                tg[win] = t[win]
                prim_geom[y0:y1, x0:x1][win] = k
                if p.obj not in hidden:
                    t_vis[y0:y1, x0:x1][win] = t[win]
                    prim_vis[y0:y1, x0:x1][win] = k
        return t_vis, prim_vis, t_geom, prim_geom

    def _rgb_sensor(self, img, kind, rng, gain_scale=1.0, noise_scale=1.0):
        cfg = self.cfg
        H, W = cfg.height, cfg.width
        if kind == "dark":
            gain = rng.uniform(*cfg.dark_gain)
            img = img * gain + 0.02
            sigma = cfg.dark_noise
        else:
            sigma = cfg.rgb_noise * noise_scale
            if gain_scale != 1.0:
                img = img * np.float32(gain_scale)
        img += rng.standard_normal((H, W, 3), dtype=np.float32) * np.float32(sigma)
        return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def _depth_sensor(self, scene: _Scene, z, prim_geom, rng):
        """RealSense-like depth in mm (0 = hole): noise ~ z^2, range limits, edge shadows, IR-absorbing
        materials, speckle."""
        cfg = self.cfg
        H, W = cfg.height, cfg.width
        noisy = z + rng.standard_normal((H, W), dtype=np.float32) * (np.float32(cfg.depth_noise_k) * z * z)
        hole = (z > cfg.max_range_m) | (z < cfg.min_range_m)
        # depth edges: invalid band where neighbouring depths jump (projector shadow / mixed pixels)
        jump_x = np.abs(np.diff(z, axis=1)) > cfg.edge_hole_rel * np.minimum(z[:, 1:], z[:, :-1])
        jump_y = np.abs(np.diff(z, axis=0)) > cfg.edge_hole_rel * np.minimum(z[1:], z[:-1])
        edge = np.zeros((H, W), bool)
        edge[:, 1:] |= jump_x
        edge[:, :-1] |= jump_x
        edge[1:] |= jump_y
        edge[:-1] |= jump_y
        if edge.any():
            edge[:, :-1] |= edge[:, 1:] & (rng.random((H, W - 1)) < 0.5)  # ragged shadow band
            hole |= edge & (rng.random((H, W)) < cfg.edge_hole_prob)
        absorb_lut = np.array([False] * 6 + [scene.mats[p.mat].absorbs_ir for p in scene.prims])
        absorb = absorb_lut[prim_geom + 6]
        if scene.room_mats and scene.mats[scene.room_mats[2]].absorbs_ir:  # glossy floor
            absorb = absorb | (prim_geom == -4)
        if absorb.any():
            # blotchy holes: coarse random field, nearest-upsampled
            gh, gw = (H + 7) // 8, (W + 7) // 8
            field = rng.random((gh, gw)) < cfg.dark_hole_prob
            field = np.repeat(np.repeat(field, 8, 0), 8, 1)[:H, :W]
            hole |= absorb & (field | (rng.random((H, W)) < 0.2))
        hole |= rng.random((H, W)) < 0.002  # speckle dropouts
        depth = np.clip(np.round(noisy * 1000.0), 1, 65535).astype(np.uint16)
        depth[hole] = 0
        return depth

    def _render(self, scene: _Scene, eye, R, kind, camo_objs, rng, index, timestamp,
                fx=None, glass_objs=()) -> SynthFrame:
        """Ray cast, shade, then the RGB and depth sensors. fx (world 2): the random stream of the
        depth-failure effects, separate from `rng` so world 1 frames stay bit-identical."""
        cfg = self.cfg
        H, W, K = cfg.height, cfg.width, cfg.intrinsics
        o = eye.astype(np.float32)
        d, inv = self._rays(R)
        hidden = list(camo_objs) + list(glass_objs)
        t_vis, prim_vis, t_geom, prim_geom = self._cast(scene, o, R, d, inv, hidden)
        pts, img = _shade(scene, o, d, t_vis, prim_vis)
        z = t_geom
        glass_mask = _object_mask(scene, prim_geom, glass_objs)
        lit = None
        if fx is not None:
            img, z, lit = _pre_sensor_effects(scene, kind, o, d, img, pts, t_vis, t_geom, prim_geom,
                                              glass_mask, fx)
        gain, noise = (1.15, 0.5) if kind == "rich" else (1.0, 1.0)
        rgb = self._rgb_sensor(img, kind, rng, gain, noise)
        labels_lut = np.array([_WALL, _WALL, _FLOOR, _CEILING, _WALL, _WALL] +
                              [p.label for p in scene.prims], np.uint8)
        labels = labels_lut[prim_geom + 6]
        depth = self._depth_sensor(scene, z, prim_geom, rng)
        if fx is not None:
            rgb, depth = _post_sensor_effects(kind, rgb, depth, z, lit, glass_mask, fx, cfg)
        camo_mask = _object_mask(scene, prim_geom, camo_objs)
        return SynthFrame(index=index, rgb=rgb, depth=depth, labels=labels, intrinsics=K, kind=kind,
                          depth_true_mm=t_geom * 1000.0, camo_mask=camo_mask, timestamp_s=float(timestamp))


class SynthSequence:
    """Lazy video: len(), indexing and iteration render frames on demand (no memory blow-up)."""

    def __init__(self, world: SyntheticWorld, n: int, start: int, motion: str, fps: float):
        self.world, self.n, self.start, self.motion, self.fps = world, n, start, motion, fps

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, j: int) -> SynthFrame:
        if j < 0:
            j += self.n
        if not 0 <= j < self.n:
            raise IndexError(f"sequence index {j} out of range 0..{self.n - 1}")
        return self.world._sequence_frame(self.start, j, self.motion, self.fps)

    def __iter__(self):
        for j in range(self.n):
            yield self[j]

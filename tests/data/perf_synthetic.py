"""Throughput of the synthetic world (not a test): python tests/data/perf_synthetic.py [W H N]."""
import sys
import time

from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld

if __name__ == "__main__":
    w, h, n = (int(v) for v in (sys.argv[1:4] if len(sys.argv) >= 4 else (320, 240, 60)))
    world = SyntheticWorld(SynthConfig(width=w, height=h))
    world.frame(0)
    t = time.perf_counter()
    for i in range(n):
        world.frame(i)
    dt = time.perf_counter() - t
    t = time.perf_counter()
    for f in world.sequence(n, motion="walk"):
        pass
    ds = time.perf_counter() - t
    print(f"{w}x{h}: frame() {n / dt:.1f} frames/s, sequence() {n / ds:.1f} frames/s (one core)")

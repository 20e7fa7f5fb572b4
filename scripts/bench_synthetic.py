"""Throughput of the synthetic world, as JSON: python scripts/bench_synthetic.py [W H N] [--json OUT]."""
import argparse
import json
import os
import platform
import time

from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("size", nargs="*", type=int, default=[320, 240, 60], help="W H N")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    w, h, n = a.size
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    world = SyntheticWorld(SynthConfig(width=w, height=h))
    world.frame(0)
    t = time.perf_counter()
    for i in range(n):
        world.frame(i)
    dt = time.perf_counter() - t
    t = time.perf_counter()
    for _ in world.sequence(n, motion="walk"):
        pass
    ds = time.perf_counter() - t
    rep = {"width": w, "height": h, "frames": n, "frame_fps": n / dt, "sequence_fps": n / ds,
           "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    print(json.dumps(rep))
    if a.json:
        from dynmm_edge.atomic import write_json
        write_json(a.json, rep)


if __name__ == "__main__":
    main()

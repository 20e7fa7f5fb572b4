"""Temporal tile reuse (docs/REGIONS.md) on still and walking synthetic sequences: for each policy, the
share of tiles whose depth stages ran, the share that fused cached features, mIoU against the labels
and the region time per frame. One Session per policy and sequence (the cache follows the sequence).

    python scripts/tile_reuse_eval.py --frames 300 --json docs/results/tile_reuse_demo_ort_cpu.json
"""
import argparse
import json
import time

import numpy as np


def run(policy: str, uri: str, threads: int):
    import dynmm_edge
    from dynmm_edge.metrics import confusion_matrix, metrics_from_confusion

    shares, reused, ms, total, fractions = [], [], [], [], []
    cm = None
    with dynmm_edge.load("demo", policy=policy, threads=threads, labels_at="model") as s, \
            dynmm_edge.open_source(uri) as src:
        nc = len(s.manifest.classes)
        cm = np.zeros((nc, nc), np.int64)
        for frame in src:
            r = s.infer(frame)
            shares.append(r.active_share)
            reused.append(r.reused_share or 0.0)
            fractions.append(r.depth_fraction)
            ms.append(r.times_ms["tiles_total"])
            total.append(r.times_ms["infer_total"])
            if frame.labels is not None:
                lab = frame.labels
                if lab.shape != r.labels.shape:  # labels at the model's input size
                    import cv2
                    lab = cv2.resize(lab, r.labels.shape[::-1], interpolation=cv2.INTER_NEAREST)
                cm += confusion_matrix(r.labels, lab, nc)
    return {"policy": policy, "frames": len(shares), "computed_tile_share": float(np.mean(shares)),
            "reused_tile_share": float(np.mean(reused)), "depth_macs_fraction": float(np.mean(fractions)),
            "miou": float(metrics_from_confusion(cm)["miou"]), "tiles_ms_p50": float(np.median(ms)),
            "infer_ms_p50": float(np.median(total))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--policies", default="region:0.5;region:0.5,reuse=0.02;region:0.5,reuse=0.05;"
                                          "region:0.5,reuse=0.1")
    ap.add_argument("--json", required=True)
    args = ap.parse_args(argv)
    from dynmm_edge.atomic import write_json

    out = {"model": "demo", "backend": "ort", "precision": "fp32", "threads": args.threads, "sequences": {}}
    t0 = time.time()
    for motion in ("still", "walk"):
        uri = (f"synthetic://?frames={args.frames}&width=256&height=192&motion={motion}&seed={args.seed}"
               f"&world=2")
        out["sequences"][motion] = {"source": uri, "runs": [run(p, uri, args.threads) for p in args.policies.split(";")]}
        for r in out["sequences"][motion]["runs"]:
            print(f"{motion:5s} {r['policy']:28s} computed {100 * r['computed_tile_share']:5.1f}%  "
                  f"reused {100 * r['reused_tile_share']:5.1f}%  depth {r['depth_macs_fraction']:.3f}  "
                  f"mIoU {100 * r['miou']:6.2f}  tiles {r['tiles_ms_p50']:.2f} ms  frame {r['infer_ms_p50']:.2f} ms",
                  flush=True)
    out["seconds"] = round(time.time() - t0, 1)
    write_json(args.json, out)
    print(f"report: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

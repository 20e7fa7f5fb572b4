"""Region break-even curve with the eager PyTorch model (CUDA when present, else CPU as a smoke test).

  python scripts/region_torch_curve.py --json OUT.json [--model demo] [--r34] [--device cuda] [--fp16]

Same modes and definitions as dynmm_edge.bench.region (full, RGB-only, region at shares 10..100 %,
interleaved per frame in a shuffled order); times are synchronised wall-clock per frame. On CUDA the
tile gather/scatter stays on the device (index_select / index_copy); the only host sync per frame is
the active-tile count (nonzero), which a bucketed deployment replaces by a fixed bucket size.
"""
import argparse
import sys
import time

import numpy as np
import torch

from dynmm_edge.atomic import write_json


def build(model: str, r34: bool):
    from dynmm_edge.model.checkpoints import load_model
    from dynmm_edge.model.net import DynMMNet
    from dynmm_edge.model.presets import get_preset
    from dynmm_edge.train.region import with_region

    if r34:
        torch.manual_seed(0)
        return DynMMNet(get_preset("esanet-r34-nbt1d-nyuv2").replace(region_tile=32)).eval(), "random (untrained)"
    net, _ = load_model(model)
    if net.region is None:
        net = with_region(net, 32)
        return net, "trained dense weights, untrained region head (timing only)"
    return net, "trained"


@torch.no_grad()
def curve(net, device, dtype, frames: int, repeats: int, shares):
    from dynmm_edge.model.region import region_costs, region_depth_macs, region_forward

    cfg, g = net.config, net.region.grid
    net = net.to(device=device, dtype=dtype)
    gen = torch.Generator().manual_seed(0)
    rgb = torch.randn(frames, 1, 3, cfg.height, cfg.width, generator=gen).to(device, dtype)
    depth = torch.randn(frames, 1, 1, cfg.height, cfg.width, generator=gen).to(device, dtype)
    masks = {}
    for s in shares:
        k = max(1, int(round(s * g.count)))
        m = torch.zeros(frames, 1, g.count)
        for i in range(frames):
            m[i, 0, torch.randperm(g.count, generator=gen)[:k]] = 1
        masks[s] = m.reshape(frames, 1, g.rows, g.cols).to(device, dtype)
    modes = ["full", "rgb", *shares]

    def run(mode, i):
        if mode == "full":
            net(rgb[i], depth[i], path=max(net.paths))
        elif mode == "rgb":
            net(rgb[i], depth[i], path=min(net.paths))
        else:
            region_forward(net, rgb[i], depth[i], masks[mode][i])

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for mode in modes:
        run(mode, 0)
    times = {m: [] for m in modes}
    order = np.random.default_rng(1)
    for _ in range(repeats):
        for i in range(frames):
            for j in order.permutation(len(modes)):
                sync()
                t0 = time.perf_counter()
                run(modes[j], i)
                sync()
                times[modes[j]].append((time.perf_counter() - t0) * 1e3)
    p50 = {str(m): float(np.median(v)) for m, v in times.items()}
    table = region_costs(net)
    depth_share = (p50["full"] - p50["rgb"]) / p50["full"]
    out = []
    for s in shares:
        frac = region_depth_macs(table, int(masks[s][0].sum())) / table["full_depth_macs"]
        out.append({"active_share": s, "ms_p50": p50[str(s)], "depth_macs_fraction": frac,
                    "realized_saving": (p50["full"] - p50[str(s)]) / p50["full"],
                    "ideal_saving": depth_share * (1 - frac)})
    return {"curve": out, "ms_p50": p50, "depth_time_share": depth_share}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", required=True)
    p.add_argument("--model", default="demo")
    p.add_argument("--r34", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--fp16", action="store_true")
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    net, weights = build(args.model, args.r34)
    dtype = torch.float16 if args.fp16 else torch.float32
    shares = [round(0.1 * k, 1) for k in range(1, 11)]
    r = curve(net, args.device, dtype, args.frames, args.repeats, shares)
    dev = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    r.update(device=dev, dtype=str(dtype), weights=weights, torch=torch.__version__,
             input=f"{net.config.width}x{net.config.height}", tile=net.config.region_tile)
    write_json(args.json, r)
    for c in r["curve"]:
        print(f"share {c['active_share']:.1f}: {c['ms_p50']:.2f} ms realized {100 * c['realized_saving']:.1f}% "
              f"ideal {100 * c['ideal_saving']:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())

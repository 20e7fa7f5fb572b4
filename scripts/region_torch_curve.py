"""Region break-even curve with the eager PyTorch model (CUDA when present, else CPU as a smoke test).

  python scripts/region_torch_curve.py --json OUT.json [--model demo] [--r34] [--device cuda] [--fp16]

Same modes and definitions as dynmm_edge.bench.region (full, RGB-only, region at shares 10..100 %,
interleaved per frame in a shuffled order); times are synchronised wall-clock per frame. On CUDA the
tile gather/scatter stays on the device (index_select / index_copy); the only host sync per frame is
the active-tile count (nonzero), which a bucketed deployment replaces by a fixed bucket size.
"""
import argparse
import sys

import torch

from dynmm_edge.atomic import write_json
from dynmm_edge.bench.region import curve_lines


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
    """The timing, masks and savings of dynmm_edge.bench.region, on the eager model."""
    from dynmm_edge.bench.region import interleaved_p50, random_masks, savings_curve
    from dynmm_edge.model.region import region_costs, region_depth_macs, region_forward

    cfg, g = net.config, net.region.grid
    net = net.to(device=device, dtype=dtype)
    gen = torch.Generator().manual_seed(0)
    rgb = torch.randn(frames, 1, 3, cfg.height, cfg.width, generator=gen).to(device, dtype)
    depth = torch.randn(frames, 1, 1, cfg.height, cfg.width, generator=gen).to(device, dtype)
    masks = {s: [torch.from_numpy(m[None]).to(device, dtype) for m in random_masks(g.rows, g.cols, s, frames, 0)]
             for s in shares}

    def run(mode, i):
        if mode == "full":
            net(rgb[i], depth[i], path=max(net.paths))
        elif mode == "rgb":
            net(rgb[i], depth[i], path=min(net.paths))
        else:
            region_forward(net, rgb[i], depth[i], masks[mode][i])

    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    p50 = interleaved_p50(run, ["full", "rgb", *shares], frames, repeats, warmup=1, seed=1, sync=sync)
    table = region_costs(net)
    result = savings_curve(p50, shares, {s: int(masks[s][0].sum()) for s in shares},
                           lambda active: region_depth_macs(table, active) / table["full_depth_macs"])
    return dict(result, ms_p50=p50)


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
    print("\n".join(curve_lines(r["curve"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())

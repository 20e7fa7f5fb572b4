"""`dynmm-edge info MODEL`: config, parameters and MACs per branch and per path."""
import argparse
import json

EPILOG = """examples:
  dynmm-edge info demo
  dynmm-edge info esanet-r34-nbt1d-nyuv2 --json
  dynmm-edge info dynmm-r50-nyuv2 --size 640x480          # reproduces DynMM's depth GMACs
  dynmm-edge info esanet_cityscapes.pth --dataset cityscapes --size 1024x512
"""


def add_parser(subparsers) -> None:
    from dynmm_edge.apps.common import add_import_options, add_model, add_size
    p = subparsers.add_parser("info", help="describe a model: config, params, MACs per branch and per path",
                              formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                              description="Describe a model (folder, checkpoint: ours, ESANet or DynMM, preset, "
                                          "demo): config, parameters and MACs per branch and per path.")
    add_model(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_size(p, help="count MACs at this input size WxH (multiples of 32)")
    add_import_options(p)
    p.set_defaults(func=run)


def describe(spec, height=None, width=None, **import_options) -> dict:
    """JSON-ready description (also used by tests and other apps)."""
    from dynmm_edge.model.checkpoints import load_model
    from dynmm_edge.model.costs import cost_report

    model, meta = load_model(spec, **import_options)
    report = cost_report(model, height, width)
    return {
        "spec": str(spec),
        "config": model.config.to_dict(),
        "classes": list(meta.get("classes", [])),
        "preprocess": meta.get("preprocess", {}),
        "train": meta.get("train", {}),
        "gate_paths": list(model.paths),
        **report,
    }


def _g(macs: int) -> str:
    return f"{macs / 1e9:.3f}"


def _table(info: dict) -> str:
    cfg = info["config"]
    lines = [f"model: {info['spec']}",
             "config: " + ", ".join(f"{k}={v}" for k, v in cfg.items()),
             f"classes ({len(info['classes'])}): {', '.join(info['classes'])}",
             f"input {info['width']}x{info['height']} (WxH)   params {info['total_params']:,}",
             "",
             f"{'branch':<8} {'GMACs':>9} {'params':>12}"]
    for name, row in info["branches"].items():
        lines.append(f"{name:<8} {_g(row['macs']):>9} {row['params']:>12,}")
    lines += ["", f"{'path':<5} {'total GMACs':>12} {'depth GMACs':>12} {'vs full':>8}"]
    full = max(row["macs"] for row in info["paths"].values())
    for k, row in info["paths"].items():
        lines.append(f"{k:<5} {_g(row['macs']):>12} {_g(row['depth_macs']):>12} {100 * row['macs'] / full:>7.1f}%")
    lines.append(f"(counting: {info['counting']})")
    return "\n".join(lines)


def run(args) -> int:
    from dynmm_edge.apps.common import import_options, size_of
    from dynmm_edge.errors import DynMMError

    height, width = size_of(args)
    try:
        info = describe(args.model, height, width, **import_options(args))
    except ValueError as exc:
        raise DynMMError(str(exc)) from None
    print(json.dumps(info, indent=2) if args.json else _table(info))
    return 0

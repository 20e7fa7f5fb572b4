"""`dynmm-edge info CKPT_OR_PRESET`: config, parameters and MACs per branch and per path."""
import json
import sys

from dynmm_edge.apps.argtypes import multiple_of_32


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("info", help="describe a model: config, params, MACs per branch and per path",
                              description="Describe a preset or checkpoint (ours, ESANet or DynMM): config, "
                                          "parameters and MACs per branch and per path.")
    p.add_argument("model", metavar="CKPT_OR_PRESET", help="checkpoint file or preset name")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--height", type=multiple_of_32, default=None, help="count MACs at this input height (multiple of 32)")
    p.add_argument("--width", type=multiple_of_32, default=None, help="count MACs at this input width (multiple of 32)")
    p.set_defaults(func=run)


def describe(spec, height=None, width=None) -> dict:
    """JSON-ready description (also used by tests and other apps)."""
    from dynmm_edge.model.checkpoints import load_model
    from dynmm_edge.model.costs import cost_report

    model, meta = load_model(spec)
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
             f"input {info['height']}x{info['width']}   params {info['total_params']:,}",
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
    from dynmm_edge.errors import DynMMError

    try:
        info = describe(args.model, args.height, args.width)
    except (DynMMError, ValueError) as exc:
        print(f"dynmm-edge info: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(info, indent=2) if args.json else _table(info))
    return 0

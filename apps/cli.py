"""`dynmm-edge`: one command, one subcommand per job. Heavy imports happen inside each command."""
import argparse
import importlib
import logging
import sys

from dynmm_edge._version import __version__
from dynmm_edge.errors import DynMMError

# subcommand -> module in dynmm_edge.apps exposing add_parser(subparsers) and run(args)
COMMANDS = {
    "demo": "demo_cmd",
    "run": "run_cmd",
    "record": "record_cmd",
    "export": "export_cmd",
    "calibrate": "calibrate_cmd",
    "build": "build_cmd",
    "selftest": "selftest_cmd",
    "bench": "bench_cmd",
    "info": "info_cmd",
    "synth": "synth_cmd",
    "train": "train_cmd",
    "eval": "eval_cmd",
    "ros2": "ros2_cmd",
}

EPILOG = """examples:
  dynmm-edge demo                                   # no camera, no GPU: synthetic recording -> overlay video + stats
  dynmm-edge run demo --source realsense:// --sink display://
  dynmm-edge export ckpt.pt -o model/ && dynmm-edge build model/ --backend trt --precision gate=fp16,depth=int8
  dynmm-edge bench model/ --source synthetic://?frames=200 --json bench.json
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynmm-edge", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Dynamic RGB-D segmentation on edge GPUs: run the depth encoder only where the gate asks.")
    parser.add_argument("--version", action="version", version=f"dynmm-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        try:
            mod = importlib.import_module(f"dynmm_edge.apps.{module}")
        except ImportError as exc:  # a command whose module is missing must not break the others
            sub.add_parser(name, help=f"(unavailable: {exc})")
            continue
        mod.add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command line, for reports
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from dynmm_edge.apps.common import check_required
    check_required(args)
    try:
        return int(args.func(args) or 0)
    except DynMMError as exc:
        if args.verbose:
            raise
        print(f"dynmm-edge {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"dynmm-edge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`dynmm-edge`: one command, one subcommand per job. Heavy imports happen inside each command."""
import argparse
import errno
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
    from dynmm_edge.signals import stop_signals
    try:
        with stop_signals():  # SIGTERM / SIGHUP stop like Ctrl-C: outputs finalised, 143 / 129
            return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        from dynmm_edge.signals import exit_code_of
        print(f"dynmm-edge {args.command}: interrupted ({exc.args[0] if exc.args else 'SIGINT'})", file=sys.stderr)
        return exit_code_of(exc)
    except (DynMMError, OSError, ImportError) as exc:
        if args.verbose:
            raise
        print(f"dynmm-edge {args.command}: error: {describe_error(exc)}", file=sys.stderr)
        return 1


def describe_error(exc: BaseException) -> str:
    """One line: what failed (file), why (cause), what to do."""
    if isinstance(exc, DynMMError):
        return str(exc)
    if isinstance(exc, ImportError):  # a runtime-only install lacks torch / onnx / cv2 for this command
        top = (getattr(exc, "name", None) or "").split(".")[0]
        extra = _EXTRAS.get(top)
        fix = f"pip install 'dynmm-edge[{extra}]'" if extra else f"pip install {top or 'the missing package'}"
        return f"this command needs the Python package {top or '?'!r}, which is not installed ({exc}); run `{fix}`"
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else "(no file named)"
        cause = exc.strerror or str(exc)
        hint = _OS_HINTS.get(exc.errno, "check the path and try again")
        return f"{where}: {cause}; {hint}"
    return f"{type(exc).__name__}: {exc}"


_EXTRAS = {"torch": "export", "onnx": "export", "onnxruntime": "ort", "cv2": "viz", "matplotlib": "viz",
           "pyrealsense2": "realsense", "tensorrt": "trt", "pynvml": "nvml", "tqdm": "torch"}

_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free space or write elsewhere",
    errno.EDQUOT: "the disk quota is exhausted: free space or write elsewhere",
    errno.EACCES: "no permission: choose a writable location or fix the permissions",
    errno.EPERM: "not permitted: choose a writable location or fix the permissions",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.ENOENT: "it does not exist: check the path",
    errno.EISDIR: "it is a folder: give a file name",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EEXIST: "it already exists: remove it or choose another name",
}

if __name__ == "__main__":
    sys.exit(main())

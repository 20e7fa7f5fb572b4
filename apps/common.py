"""One flag vocabulary for every `dynmm-edge` command (and the few helpers the commands share).

positional MODEL (folder, checkpoint, preset or `demo`), `--source` for frames in, `-o/--output`
for the main artefact, `--json` for reports, sizes as WxH. Old spellings stay as hidden aliases
that print one deprecation line, so existing scripts keep working while -h shows one vocabulary.
"""
import argparse
import sys
from typing import Optional, Tuple

MODEL_HELP = "model folder, checkpoint file (ours, ESANet, DynMM), preset name or 'demo'"


class _Deprecated(argparse.Action):
    """A hidden old spelling: stores into the new flag's dest and prints one note on stderr."""

    def __init__(self, option_strings, dest, new_flag="", **kwargs):
        self.new_flag = new_flag
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: note: {option_string} is deprecated, use {self.new_flag}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def deprecated_alias(p, old: str, new_flag: str, dest: str, **kwargs) -> None:
    """Accept `old` as a hidden alias of `new_flag` (same dest, same type)."""
    p.add_argument(old, dest=dest, action=_Deprecated, new_flag=new_flag, default=argparse.SUPPRESS, **kwargs)


def require(p, dest: str, flag: str) -> None:
    """Mark a flag required while still accepting its deprecated alias (checked by cli.main)."""
    p.set_defaults(_required=tuple(p.get_default("_required") or ()) + ((dest, flag),), _parser=p)


def check_required(args) -> None:
    """argparse-style error (exit 2) for a required flag given neither as itself nor by its alias."""
    missing = [flag for dest, flag in getattr(args, "_required", ()) if getattr(args, dest, None) in (None, "")]
    if missing:
        args._parser.error(f"the following arguments are required: {', '.join(missing)}")


def add_model(p, nargs=None, default=None, help_extra: str = "") -> None:
    p.add_argument("model", metavar="MODEL", nargs=nargs, default=default, help=MODEL_HELP + help_extra)


def add_source(p, required: bool = False, default=None, help: str = "", old=("--data",)) -> None:
    p.add_argument("--source", default=default, help=help or "frames: realsense://, FILE.db3|.bag, DIR, synthetic://?...")
    for o in old:
        deprecated_alias(p, o, "--source", "source")
    if required:
        require(p, "source", "--source")


def add_output(p, required: bool = False, default=None, help: str = "", old=("--out",)) -> None:
    p.add_argument("-o", "--output", default=default, help=help or "where to write the main artefact")
    for o in old:
        deprecated_alias(p, o, "-o/--output", "output")
    if required:
        require(p, "output", "-o/--output")


def add_json(p, required: bool = False, help: str = "", old=()) -> None:
    p.add_argument("--json", default=None, help=help or "write the report as JSON here")
    for o in old:
        deprecated_alias(p, o, "--json", "json")
    if required:
        require(p, "json", "--json")


def add_size(p, help: str = "input size WxH (multiples of 32; default: the model's)") -> None:
    """--size WxH for a network input: both sides positive multiples of 32, checked while parsing
    (the hidden --height/--width aliases get the same check)."""
    from dynmm_edge.apps.argtypes import multiple_of_32, size_multiple_of_32
    p.add_argument("--size", type=size_multiple_of_32, default=None, metavar="WxH", help=help)
    deprecated_alias(p, "--height", "--size WxH", "height", type=multiple_of_32)
    deprecated_alias(p, "--width", "--size WxH", "width", type=multiple_of_32)


def size_of(args) -> Tuple[Optional[int], Optional[int]]:
    """(height, width) from --size or the deprecated --height/--width."""
    if getattr(args, "size", None):
        w, h = args.size
        return h, w
    return getattr(args, "height", None), getattr(args, "width", None)


def add_import_options(p) -> None:
    """How to read an ESANet/DynMM checkpoint (or reshape a preset's head)."""
    from dynmm_edge.apps.argtypes import positive_int
    p.add_argument("--dataset", default=None,
                   help="dataset an imported checkpoint was trained on: nyuv2, sunrgbd, cityscapes, generic "
                        "(default: from the class count; any other count -> generic names, generated palette)")
    p.add_argument("--num-classes", type=positive_int, default=None,
                   help="classes of the model (checked against an imported file; sets a preset's head)")
    p.add_argument("--upsampling", default=None,
                   choices=("learned-3x3-zeropad", "learned-3x3", "learned-zeropad", "learned"),
                   help="ESANet --upsampling the checkpoint was trained with (default learned-3x3-zeropad, the "
                        "released models'; the file cannot tell)")


def import_options(args) -> dict:
    return {k: getattr(args, k, None) for k in ("dataset", "num_classes", "upsampling")
            if getattr(args, k, None) is not None}


def resolve_model(model, progress=None):
    """MODEL (folder, checkpoint, preset, demo) -> a model folder, through the one resolver (dynmm_edge.models)."""
    from dynmm_edge.models import resolve_model as _resolve
    return _resolve(model, progress=progress)


def writable_model(model, output=None, progress=None):
    """A model folder this command may write into (calibrate, build): the resolved folder itself, or,
    for the shipped demo model (read-only package data) or when -o/--output is given, a copy."""
    import shutil
    from pathlib import Path

    from dynmm_edge.paths import DEMO_MODEL, cache_dir
    folder = Path(resolve_model(model, progress=progress))
    target = Path(output) if output else None
    if target is None and folder.resolve() == DEMO_MODEL.resolve():
        from dynmm_edge.manifest import sha256_file
        target = cache_dir() / "models" / f"demo-work-{sha256_file(DEMO_MODEL / 'manifest.json')[:12]}"
    if target is None or target.resolve() == folder.resolve():
        return folder
    if target.exists() and (target / "manifest.json").is_file() and output is None:
        return target  # the demo working copy from an earlier call
    if target.exists() and any(target.iterdir()):
        from dynmm_edge.errors import DynMMError
        raise DynMMError(f"{target} already exists and is not empty: choose another -o/--output")
    shutil.copytree(folder, target, dirs_exist_ok=True)
    print(f"working on a copy of {folder} in {target}", file=sys.stderr)
    return target

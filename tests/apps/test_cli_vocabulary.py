"""One flag vocabulary across every `dynmm-edge` subcommand (walks the real parsers)."""
import argparse

import pytest

from dynmm_edge.apps.cli import COMMANDS, build_parser, main

# the only visible spellings for data in / artefacts out
INPUT_FLAGS = {"--source", "--val-source", "--eval-source"}
OUTPUT_FLAGS = {"-o", "--output", "--json", "--png", "--cache-dir"}  # --png: eval's plot; --cache-dir: engines
OLD_SPELLINGS = {"--data", "--out", "--report", "--summary-json", "--model", "--height", "--width", "--val-data",
                 "--eval-data", "--json-out"}
NO_MODEL = {"record", "synth", "train"}  # commands that take no model (train starts from --preset/--init-from)


def _subparsers():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def _visible(p):
    return [a for a in p._actions if a.help != argparse.SUPPRESS]


def test_every_command_is_registered_and_has_examples():
    subs = _subparsers()
    assert set(subs) == set(COMMANDS)
    for name, p in subs.items():
        assert "examples" in (p.epilog or ""), f"{name} -h has no examples"
        assert f"dynmm-edge {name}" in p.epilog, name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_flag_names(name):
    p = _subparsers()[name]
    flags = {o for a in _visible(p) for o in a.option_strings}
    assert not flags & OLD_SPELLINGS, f"{name}: old spellings visible: {flags & OLD_SPELLINGS}"
    for f in flags:
        words = set(f.lower().strip("-").split("-"))
        if words & {"data", "source", "input"}:
            assert f in INPUT_FLAGS, f"{name}: input flag {f} is not --source"
        if words & {"o", "out", "output", "report", "json", "save", "summary"}:
            assert f in OUTPUT_FLAGS, f"{name}: output flag {f} outside -o/--output, --json"
    if "-o" in flags or "--output" in flags:
        opt = next(a for a in _visible(p) if "--output" in a.option_strings)
        assert opt.option_strings == ["-o", "--output"], name
    positionals = [a for a in _visible(p) if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
    if name in NO_MODEL:
        assert not positionals, name
    else:
        assert [a.metavar for a in positionals] == ["MODEL"], f"{name}: model must be the positional MODEL"
    for a in _visible(p):
        if "--size" in a.option_strings:
            assert a.metavar == "WxH" and a.type("640x480") == (640, 480)


def test_old_spellings_still_work_with_one_note(capsys):
    parser = build_parser()
    args = parser.parse_args(["eval", "demo", "--data", "synthetic://?frames=2", "--json", "x.json"])
    assert args.source == "synthetic://?frames=2"
    args = parser.parse_args(["calibrate", "demo", "--data", "d", "--report", "r.json", "--eval-data", "e"])
    assert (args.source, args.json, args.eval_source) == ("d", "r.json", "e")
    args = parser.parse_args(["export", "demo", "--out", "m", "--height", "96", "--width", "128"])
    assert args.output == "m" and (args.height, args.width) == (96, 128)
    args = parser.parse_args(["demo", "--model", "models/x", "--out", "o"])
    assert (args.model, args.output) == ("models/x", "o")
    err = capsys.readouterr().err.splitlines()
    assert "dynmm-edge eval: note: --data is deprecated, use --source" in err
    assert "dynmm-edge demo: note: --model is deprecated, use the positional MODEL" in err
    assert len(err) == 9  # one line per old spelling used


def test_required_flags_accept_the_alias_and_are_still_required(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "demo", "--json", "x.json"])
    assert exc.value.code == 2
    assert "the following arguments are required: --source" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "demo"])
    assert "required: -o/--output" in capsys.readouterr().err

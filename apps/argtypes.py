"""argparse types that refuse NaN, infinities and out-of-range numbers with the flag's name.

argparse turns the ArgumentTypeError into one line: `dynmm-edge CMD: error: argument --flag: ...`
(exit status 2), before any model is loaded or file written.
"""
import argparse


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} must be >= {minimum}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (0, negatives and non-numbers are refused by name)."""
    return _int_at_least(text, 1)


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be > 0")
    return value


def unit_float(text: str) -> float:
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} must be in [0, 1]")
    return value


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be >= 0")
    return value


def multiple_of_32(text: str) -> int:
    """Input sizes: the encoders downsample 5 times."""
    value = positive_int(text)
    if value % 32:
        raise argparse.ArgumentTypeError(f"{value} is not a multiple of 32 (try {max(32, round(value / 32) * 32)})")
    return value


def percent(text: str) -> float:
    value = finite_float(text)
    if not 0.0 < value <= 100.0:
        raise argparse.ArgumentTypeError(f"{value:g} must be in (0, 100]")
    return value


def size_wxh(text: str) -> tuple:
    """'WxH' -> (width, height), both >= 1."""
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH (e.g. 640x480)") from None
    for side, value in (("width", w), ("height", h)):
        if value < 1:
            raise argparse.ArgumentTypeError(f"{side} {value} in {text!r} must be >= 1")
    return w, h


def size_multiple_of_32(text: str) -> tuple:
    """'WxH' for a network input: both sides positive multiples of 32 (the encoders downsample 5 times)."""
    w, h = size_wxh(text)
    for side, value in (("width", w), ("height", h)):
        if value % 32:
            raise argparse.ArgumentTypeError(
                f"{side} {value} in {text!r} is not a multiple of 32 (try {max(32, round(value / 32) * 32)})")
    return w, h

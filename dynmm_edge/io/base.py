"""FrameSource: the one seam between cameras/recordings/datasets and the runtime.

A source is an iterable of Frame that simply stops at end of stream (no sentinel values, no
polling), carries `live` so the pipeline knows whether it may drop frames, and is a context
manager so the device or file is released even when the consumer stops early.
"""
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, unquote

from dynmm_edge.errors import DataError
from dynmm_edge.types import Frame


class FrameSource:
    """Base class for every source. Subclasses implement `_frames()` (a generator) and `_close()`.

    Attributes: live (True when frames arrive in real time and cannot be paused), size ((w, h)
    of the RGB frames, or None when unknown before the first frame), name (for logs and HUDs).
    """

    live: bool = False
    size: Optional[Tuple[int, int]] = None
    name: str = "source"
    # False: an unreadable frame raises BadFrame (plain iteration ends). True (set by the pipeline):
    # it is yielded, so the stream goes on and the pipeline decides (--on-bad-frame skip|stop).
    yield_bad_frames: bool = False

    def __init__(self):
        self._closed = False

    def _frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def _close(self) -> None:
        """Release the device/file; called once."""

    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            raise RuntimeError(f"FrameSource {self.name!r} is closed")
        return self._frames()

    def close(self) -> None:
        """Idempotent: safe to call from finally blocks and from __exit__."""
        if not self._closed:
            self._closed = True
            self._close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r}, live={self.live}, size={self.size})"


class ListSource(FrameSource):
    """Frames from a list: replays held in memory (bench throughput runs) and tests. Offline: nothing
    is ever dropped. A product source, not a test double: dynmm_edge.bench replays frames with it."""

    def __init__(self, frames: Iterable[Frame], live: bool = False, name: str = "list"):
        super().__init__()
        self._list: List[Frame] = list(frames)
        self.live = bool(live)
        self.name = name
        self.size = (self._list[0].rgb.shape[1], self._list[0].rgb.shape[0]) if self._list else None

    def __len__(self):
        return len(self._list)

    def _frames(self):
        for frame in self._list:
            if self._closed:
                return
            yield frame


# ----------------------------------------------------------------------------------------------
# URI parsing shared by open_source and open_sink


@dataclass(frozen=True)
class ParsedUri:
    """scheme ('' for plain paths), target (host/serial or path), query options as strings."""
    scheme: str
    target: str
    query: Dict[str, str]
    text: str


def parse_uri(uri) -> ParsedUri:
    """Split 'scheme://target?k=v&...' ; plain paths (no '://') get scheme ''.

    Windows drive letters and paths with '?' in names are not URIs: only '://' makes a scheme.
    A repeated option is an error rather than last-one-wins.
    """
    text = str(uri)
    if "://" not in text:
        return ParsedUri("", text, {}, text)
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    target, _, qs = rest.partition("?")
    query: Dict[str, str] = {}
    for key, value in parse_qsl(qs, keep_blank_values=True):
        if key in query:
            raise DataError(f"option {key!r} given twice in {text!r}")
        query[key] = value
    return ParsedUri(scheme, unquote(target), query, text)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _to_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"expected a boolean (1/0/true/false), got {value!r}")


def _to_list(value):
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


CONVERTERS = {int: int, float: float, str: str, bool: _to_bool, list: _to_list}


def resolve_options(what: str, spec: Mapping[str, tuple], query: Mapping[str, Any],
                    kwargs: Mapping[str, Any]) -> Dict[str, Any]:
    """Merge URI query and keyword options against `spec` (name -> (type, default)).

    Unknown names or unparsable values raise DataError listing the valid options, so a typo never
    silently falls back to a default. Keyword arguments override query values.
    """
    merged = dict(query)
    merged.update(kwargs)
    unknown = sorted(k for k in merged if k not in spec)
    if unknown:
        valid = ", ".join(f"{k}={spec[k][1]!r}" for k in sorted(spec)) or "(none)"
        raise DataError(f"unknown option(s) {unknown} for {what}; valid options: {valid}")
    out = {}
    for name, (typ, default) in spec.items():
        if name not in merged or merged[name] is None:
            out[name] = default
            continue
        try:
            out[name] = CONVERTERS[typ](merged[name])
        except (TypeError, ValueError) as exc:
            raise DataError(f"option {name}={merged[name]!r} for {what} is not a valid {typ.__name__}: {exc}") from exc
    return out

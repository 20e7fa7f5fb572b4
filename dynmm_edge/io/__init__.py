"""Frame sources (cameras, recordings, folders, synthetic world) and result sinks, picked by URI."""
from dynmm_edge.io.base import FrameSource, ListSource, parse_uri  # noqa: F401


def open_source(uri, **opts):
    """See dynmm_edge.io.sources.open_source (imported lazily: keeps `import dynmm_edge.io` light)."""
    from dynmm_edge.io.sources import open_source as _open
    return _open(uri, **opts)


def open_sink(uri, **opts):
    """See dynmm_edge.io.sinks.open_sink."""
    from dynmm_edge.io.sinks import open_sink as _open
    return _open(uri, **opts)


def open_sinks(uris, **opts):
    """See dynmm_edge.io.sinks.open_sinks."""
    from dynmm_edge.io.sinks import open_sinks as _open
    return _open(uris, **opts)

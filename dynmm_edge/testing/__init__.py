"""Test doubles for the SDK's seams, importable by users writing their own tests.

FakeLiveSource (a camera at a fixed rate), FakeMeter (scripted watts), FakeClock (a clock the test
advances), manifest_for (a minimal Manifest around hand-made branches, for backend tests). Product
code never imports this package (tests/test_import_graph.py checks it).
"""
from dynmm_edge.testing.clock import FakeClock
from dynmm_edge.testing.manifests import manifest_for
from dynmm_edge.testing.power import FakeMeter
from dynmm_edge.testing.sources import FakeLiveSource

__all__ = ["FakeClock", "FakeLiveSource", "FakeMeter", "manifest_for"]

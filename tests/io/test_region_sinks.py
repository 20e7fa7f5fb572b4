"""Region mode in sinks: overlay outlines active tiles, HUD and jsonl carry the active share."""
import json

import numpy as np
import pytest

from dynmm_edge.errors import DataError
from dynmm_edge.io.sinks import JsonlSink
from dynmm_edge.types import Result
from dynmm_edge.viz.overlay import draw_tiles


def _result(mask):
    return Result(frame_id=3, labels=np.zeros((64, 128), np.int32), path=5, times_ms={"total": 1.0},
                  branches_run=("region_gate",), depth_macs=5.0, tile_mask=np.asarray(mask), tile_size=32)


def test_draw_tiles_outlines_only_active_tiles():
    img = np.zeros((64, 128, 3), np.uint8)
    out = draw_tiles(img, np.array([[False, True, False, False], [False, False, False, False]]))
    assert (out[0, 32:64] == (255, 255, 0)).all() and (out[31, 32:64] == (255, 255, 0)).all()  # tile (0, 1)
    assert out[40:60, 40:60].max() == 0 and out[:, :32].max() == 0     # other tiles untouched
    assert img.max() == 0                                                 # input not modified
    with pytest.raises(DataError, match="tile mask"):
        draw_tiles(img, np.zeros(8, bool))


def test_jsonl_records_active_share_and_mask(tmp_path):
    sink = JsonlSink(tmp_path / "r.jsonl")
    sink.write(_result([[True, False, False, False], [False, False, False, True]]))
    sink.close()
    rec = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])
    assert rec["active_share"] == 0.25 and rec["tile_mask"] == [[1, 0, 0, 0], [0, 0, 0, 1]]


def test_result_without_regions_has_no_active_share():
    r = _result([[True]])
    r.tile_mask = None
    assert r.active_share is None


def test_hud_shows_the_active_share():
    from dynmm_edge.io.sinks import _Renderer
    lines = _Renderer(None, None, 0.5, True).hud_lines(_result([[True, False, False, False], [False] * 4]))
    assert lines[-1] == "depth tiles active: 12.5%"

"""URI parsing, option validation, directory and synthetic sources, base sources."""
import numpy as np
import pytest

from dynmm_edge._lazy import available
from dynmm_edge.errors import DataError
from dynmm_edge.io.base import ListSource, parse_uri, resolve_options
from dynmm_edge.io.sources import open_source
from dynmm_edge.types import Frame

needs_cv2 = pytest.mark.skipif(not available("cv2"), reason="opencv-python not installed")


def _frame(i, w=16, h=12):
    return Frame(i, np.full((h, w, 3), i % 256, np.uint8), np.full((h, w), 1000 + i, np.uint16))


def test_parse_uri_splits_scheme_target_and_query():
    p = parse_uri("realsense://123456?width=424&filters=spatial,temporal")
    assert (p.scheme, p.target) == ("realsense", "123456")
    assert p.query == {"width": "424", "filters": "spatial,temporal"}
    assert parse_uri("/data/rec.db3").scheme == ""
    assert parse_uri("/data/rec.db3").target == "/data/rec.db3"
    assert parse_uri("synthetic://?frames=5").target == ""
    with pytest.raises(DataError, match="given twice"):
        parse_uri("synthetic://?frames=5&frames=6")


def test_resolve_options_types_defaults_and_errors():
    spec = {"width": (int, 640), "live": (bool, False), "filters": (list, ()), "alpha": (float, 0.5)}
    got = resolve_options("x", spec, {"width": "320", "live": "1", "filters": "a, b"}, {"alpha": 0.25})
    assert got == {"width": 320, "live": True, "filters": ("a", "b"), "alpha": 0.25}
    with pytest.raises(DataError) as e:
        resolve_options("src", spec, {"widht": "3"}, {})
    assert "widht" in str(e.value) and "width=640" in str(e.value) and "filters" in str(e.value)
    with pytest.raises(DataError, match="width='abc'"):
        resolve_options("src", spec, {"width": "abc"}, {})
    with pytest.raises(DataError, match="boolean"):
        resolve_options("src", spec, {"live": "maybe"}, {})


def test_unknown_scheme_and_unknown_option_list_valid_ones():
    with pytest.raises(DataError) as e:
        open_source("v4l2:///dev/video0")
    msg = str(e.value)
    assert "v4l2" in msg and "realsense://" in msg and "synthetic://" in msg
    with pytest.raises(DataError) as e:
        open_source("synthetic://?frames=3&colour=1")
    assert "colour" in str(e.value) and "hard_fraction" in str(e.value)
    with pytest.raises(DataError, match="unknown option"):
        open_source("synthetic://?frames=3", speed=2)
    with pytest.raises(DataError, match="unknown RealSense filter"):
        open_source("realsense://?filters=spatial,median")
    with pytest.raises(DataError, match="no such file"):
        open_source("/nonexistent/place/rec.mp4")


def test_synthetic_source_count_labels_and_keyword_override():
    with open_source("synthetic://?frames=4&width=40&height=32&seed=1&motion=still", frames=3) as src:
        assert not src.live and src.size == (40, 32)
        frames = list(src)
    assert [f.frame_id for f in frames] == [0, 1, 2]
    for f in frames:
        assert f.rgb.shape == (32, 40, 3) and f.rgb.dtype == np.uint8
        assert f.depth.shape == (32, 40) and f.depth.dtype == np.uint16
        assert f.labels.shape == (32, 40) and f.depth_scale_m == 0.001
    assert src.produced == 3


def test_synthetic_source_live_paces_frames():
    import time
    src = open_source("synthetic://?frames=4&width=16&height=12&live=1&fps=40&motion=iid")
    assert src.live
    t0 = time.perf_counter()
    assert len(list(src)) == 4
    assert time.perf_counter() - t0 >= 3 / 40 - 0.01
    with pytest.raises(DataError, match="motion"):
        open_source("synthetic://?motion=fly")


def test_list_source():
    ls = ListSource([_frame(i) for i in range(3)])
    assert [f.frame_id for f in ls] == [0, 1, 2] and ls.size == (16, 12) and not ls.live
    ls.close()
    with pytest.raises(RuntimeError, match="closed"):
        iter(ls)


@needs_cv2
def test_directory_source_nyuv2_layout_and_split(tmp_path):
    from dynmm_edge.data.datasets import write_nyuv2_layout
    frames = [Frame(i, np.full((12, 16, 3), 10 * i, np.uint8), np.full((12, 16), 500 + i, np.uint16),
                    labels=np.full((12, 16), i, np.uint8)) for i in range(3)]
    write_nyuv2_layout(tmp_path, "test", frames)
    with open_source(f"dir://{tmp_path}?split=test") as src:
        got = list(src)
    assert len(got) == 3 and src.size == (16, 12) and not src.live
    assert [int(f.depth[0, 0]) for f in got] == [500, 501, 502]
    assert [int(f.labels[0, 0]) for f in got] == [0, 1, 2]
    assert [int(f.rgb[0, 0, 0]) for f in got] == [0, 10, 20]
    # the only split is found without ?split=; the split dir itself works as a plain path
    assert len(list(open_source(str(tmp_path)))) == 3
    assert len(list(open_source(str(tmp_path / "test")))) == 3
    with pytest.raises(DataError, match="no split 'train'"):
        open_source(f"dir://{tmp_path}?split=train")


@needs_cv2
def test_directory_source_pairs_and_missing_depth(tmp_path):
    import cv2
    for d in ("rgb", "depth"):
        (tmp_path / d).mkdir()
    for i in range(2):
        cv2.imwrite(str(tmp_path / "rgb" / f"{i:04d}.png"), np.zeros((8, 10, 3), np.uint8))
        cv2.imwrite(str(tmp_path / "depth" / f"{i:04d}.png"), np.full((8, 10), 700, np.uint16))
    with open_source(tmp_path, depth_scale_m=0.0001) as src:
        got = list(src)
    assert src.layout == "pairs" and len(got) == 2 and got[0].depth_scale_m == 0.0001 and got[0].labels is None
    cv2.imwrite(str(tmp_path / "rgb" / "0002.png"), np.zeros((8, 10, 3), np.uint8))
    with pytest.raises(DataError) as e:
        open_source(f"dir://{tmp_path}")
    assert "0002.png" in str(e.value) and "depth" in str(e.value)


def test_directory_source_several_splits_needs_choice(tmp_path):
    for s in ("train", "test"):
        (tmp_path / s / "rgb").mkdir(parents=True)
    with pytest.raises(DataError, match="several splits"):
        open_source(f"dir://{tmp_path}")
    with pytest.raises(DataError, match="no rgb/"):
        open_source(f"dir://{tmp_path / 'train' / 'rgb'}")

"""Image <-> numpy conversions shared by the bag source/sink and the node."""
import types

import numpy as np
import pytest

from dynmm_edge._lazy import available
from dynmm_edge.errors import DataError
from dynmm_edge.io import rosmsg


def _img(arr, encoding, bigendian=False, pad=0):
    a = np.ascontiguousarray(arr)
    if bigendian:
        a = a.astype(a.dtype.newbyteorder(">"))
    h = a.shape[0]
    rows = a.reshape(h, -1).view(np.uint8)
    rows = np.concatenate([rows, np.zeros((h, pad), np.uint8)], axis=1)
    return types.SimpleNamespace(height=h, width=a.shape[1], encoding=encoding, is_bigendian=int(bigendian),
                                 step=rows.shape[1], data=rows.tobytes(),
                                 header=types.SimpleNamespace(stamp=types.SimpleNamespace(sec=3, nanosec=7),
                                                              frame_id="cam"))


RGB = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)


@pytest.mark.parametrize("enc,arr", [("rgb8", RGB), ("bgr8", RGB[..., ::-1]),
                                     ("rgba8", np.dstack([RGB, np.full((4, 5), 9, np.uint8)]))])
def test_colour_encodings_give_rgb(enc, arr):
    out = rosmsg.image_to_rgb(_img(arr, enc, pad=3), "topic /c")
    assert out.dtype == np.uint8 and np.array_equal(out, RGB)


def test_depth_16uc1_is_mm_and_32fc1_is_metres_with_invalid_as_zero():
    mm = np.array([[0, 1000], [65535, 1234]], np.uint16)
    d, scale = rosmsg.image_to_depth(_img(mm, "16UC1", pad=2), "topic /d")
    assert scale == 0.001 and d.dtype == np.uint16 and np.array_equal(d, mm)
    d, _ = rosmsg.image_to_depth(_img(mm, "16UC1", bigendian=True), "topic /d")
    assert np.array_equal(d, mm)
    m = np.array([[np.nan, 1.5], [np.inf, -1.0]], np.float32)
    d, scale = rosmsg.image_to_depth(_img(m, "32FC1"), "topic /d")
    assert scale == 1.0 and d.dtype == np.float32 and d.tolist() == [[0.0, 1.5], [0.0, 0.0]]


def test_unsupported_encodings_and_truncated_data_name_the_topic():
    with pytest.raises(DataError, match=r"topic /cam/x: unsupported colour encoding 'yuv422'"):
        rosmsg.image_to_rgb(_img(RGB, "yuv422"), "topic /cam/x")
    with pytest.raises(DataError, match=r"topic /d: unsupported depth encoding '8UC1'.*16UC1"):
        rosmsg.image_to_depth(_img(RGB[..., 0], "8UC1"), "topic /d")
    msg = _img(RGB, "rgb8")
    msg.data = msg.data[:-1]
    with pytest.raises(DataError, match=r"topic /c: truncated image data \(59 bytes"):
        rosmsg.image_to_rgb(msg, "topic /c")


def test_image_fields_round_trip_and_label_encoding():
    lab = np.array([[0, 300], [65535, 7]], np.uint16)
    f = rosmsg.image_fields(lab, "16UC1")
    assert f["step"] == 4 and f["is_bigendian"] == 0
    msg = types.SimpleNamespace(**f)
    assert np.array_equal(rosmsg.image_to_depth(msg, "x")[0], lab)
    assert rosmsg.labels_encoding(40) == "mono8" and rosmsg.labels_encoding(256) == "mono8"
    assert rosmsg.labels_encoding(257) == "16UC1"


@pytest.mark.skipif(not available("cv2"), reason="opencv-python not installed")
def test_compressed_colour_and_compressed_depth():
    import cv2
    ok, png = cv2.imencode(".png", RGB[..., ::-1])
    msg = types.SimpleNamespace(format="rgb8; png compressed bgr8", data=png.tobytes())
    assert np.array_equal(rosmsg.to_rgb(msg, rosmsg.COMPRESSED, "t"), RGB)
    mm = np.array([[0, 1000], [4000, 1234]], np.uint16)
    ok, png16 = cv2.imencode(".png", mm)
    msg = types.SimpleNamespace(format="16UC1; compressedDepth png", data=bytes(12) + png16.tobytes())
    d, scale = rosmsg.to_depth(msg, rosmsg.COMPRESSED, "t")
    assert scale == 0.001 and np.array_equal(d, mm)
    msg.format = "32FC1; compressedDepth"
    with pytest.raises(DataError, match="unsupported compressed depth format '32FC1"):
        rosmsg.to_depth(msg, rosmsg.COMPRESSED, "t")
    with pytest.raises(DataError, match="topic /c/compressed: cannot decode"):
        rosmsg.to_rgb(types.SimpleNamespace(format="jpeg", data=b"not a jpeg"), rosmsg.COMPRESSED,
                      "topic /c/compressed")

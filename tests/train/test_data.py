"""Training datasets: synthetic URI parsing, item tensors, deterministic augmentation, bad data errors."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dynmm_edge.data.preprocess import PreprocessConfig
from dynmm_edge.errors import DataError
from dynmm_edge.train.data import (AugmentConfig, NO_AUGMENT, FolderDataset, SyntheticDataset, collate,
                                   open_dataset, parse_synthetic_uri)

PRE = PreprocessConfig(height=64, width=64, depth_mean=2931.67, depth_std=1100.0)


def test_parse_synthetic_uri():
    o = parse_synthetic_uri("synthetic://?frames=12&hard_fraction=0.5&seed=3")
    assert o == {"frames": 12, "hard_fraction": 0.5, "seed": 3, "start": 0, "world": 2, "kinds": ""}
    with pytest.raises(DataError, match="colour"):
        parse_synthetic_uri("synthetic://?frames=2&colour=1")
    with pytest.raises(DataError, match="hard_fraction"):
        parse_synthetic_uri("synthetic://?hard_fraction=2")


def test_synthetic_items_shapes_dtypes_and_labels():
    ds = open_dataset("synthetic://?frames=4&seed=5", PRE, num_classes=8)
    assert len(ds) == 4
    it = ds[1]
    assert it["rgb"].shape == (3, 64, 64) and it["rgb"].dtype == torch.float32
    assert it["depth"].shape == (1, 64, 64)
    assert it["labels"].shape == (64, 64) and it["labels"].dtype == torch.int64
    vals = set(it["labels"].unique().tolist())
    assert vals <= set(range(8)) | {255}
    assert it["kind"] in ("easy", "camouflaged", "dark")
    b = collate([ds[0], ds[1]])
    assert b["rgb"].shape == (2, 3, 64, 64) and b["index"] == [0, 1]
    # raw cache keeps compact dtypes
    rgb, depth, lab, _, _ = ds._raw[0]
    assert rgb.dtype == np.uint8 and depth.dtype == np.uint16 and lab.dtype == np.uint8


def test_augmentation_deterministic_per_epoch_and_rgb_only_jitter():
    ds = SyntheticDataset(PRE, frames=2, seed=1, augment=AugmentConfig())
    ds.set_epoch(3)
    a, b = ds[0], ds[0]
    assert torch.equal(a["rgb"], b["rgb"]) and torch.equal(a["labels"], b["labels"])
    outs = []
    for e in range(6):
        ds.set_epoch(e)
        outs.append(ds[0]["rgb"])
    assert any(not torch.equal(outs[0], o) for o in outs[1:])
    # colour jitter only: depth and labels identical to the un-augmented item, rgb differs
    jitter = SyntheticDataset(PRE, frames=1, seed=1, augment=AugmentConfig(flip=False, scale_max=1.0))
    plain = SyntheticDataset(PRE, frames=1, seed=1, augment=NO_AUGMENT)
    j, p = jitter[0], plain[0]
    assert torch.equal(j["depth"], p["depth"]) and torch.equal(j["labels"], p["labels"])
    assert not torch.equal(j["rgb"], p["rgb"])


def _write_folder(tmp_path, n=3):
    pytest.importorskip("cv2")
    from dynmm_edge.data.datasets import write_nyuv2_layout
    from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld

    w = SyntheticWorld(SynthConfig(width=64, height=48, seed=2))
    write_nyuv2_layout(tmp_path, "train", [w.frame(i) for i in range(n)])
    return tmp_path


def test_folder_dataset_reads_and_resizes(tmp_path):
    root = _write_folder(tmp_path)
    ds = FolderDataset(root, PRE, split="train", num_classes=8)
    assert len(ds) == 3
    assert ds[2]["rgb"].shape == (3, 64, 64) and ds[2]["labels"].shape == (64, 64)


def test_bad_label_file_named(tmp_path):
    import cv2
    root = _write_folder(tmp_path)
    bad = root / "train" / "semantic_40" / "0001.png"
    cv2.imwrite(str(bad), np.full((48, 64), 30, np.uint8))  # class 29 >= 8 classes
    with pytest.raises(DataError, match="0001.png"):
        FolderDataset(root, PRE, split="train", num_classes=8)


def test_corrupt_depth_file_named(tmp_path):
    root = _write_folder(tmp_path)
    bad = root / "train" / "depth" / "0002.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match="0002.png"):
        FolderDataset(root, PRE, split="train", num_classes=8)


def test_missing_folder_named(tmp_path):
    with pytest.raises(DataError, match="nowhere"):
        FolderDataset(tmp_path / "nowhere", PRE)


def test_item_error_names_frame():
    ds = SyntheticDataset(PRE, frames=1, seed=0)
    rgb, depth, lab, kind, name = ds._raw[0]
    ds._raw[0] = (rgb, depth[:10], lab, kind, "broken_frame_7.png")  # shape mismatch after construction
    with pytest.raises(DataError, match="broken_frame_7.png"):
        ds[0]

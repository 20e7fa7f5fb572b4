"""Record a model's gate logits and every path's per-frame confusion matrix on a synthetic set, as
the compact .npz that the policy tests replay (tests/runtime/data/gate_records.npz).

    python scripts/record_gate_fixture.py dynmm_edge/assets/demo_model/model.pt \
        'synthetic://?frames=300&hard_fraction=0.3&seed=5151&world=2' tests/runtime/data/gate_records.npz
"""
import sys

import numpy as np
import torch


def main(model_path: str, data: str, out: str) -> None:
    from dynmm_edge.atomic import atomic_path
    from dynmm_edge.data.preprocess import PreprocessConfig
    from dynmm_edge.model.checkpoints import load_model
    from dynmm_edge.train.data import open_dataset
    from dynmm_edge.train.evaluate import collect, depth_macs_per_path

    torch.set_num_threads(2)
    model, meta = load_model(model_path)
    ds = open_dataset(data, PreprocessConfig.from_dict(dict(meta["preprocess"])),
                      num_classes=model.config.num_classes)
    rec = collect(model, ds, batch_size=8)
    if rec.confusion.max() > np.iinfo(np.uint16).max:
        raise SystemExit("a confusion cell exceeds uint16: record at a smaller size")
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, logits=rec.logits.astype(np.float32), confusion=rec.confusion.astype(np.uint16),
                                kinds=np.asarray(rec.kinds), paths=np.asarray(model.paths),
                                depth_macs=np.asarray(depth_macs_per_path(model)), data=np.asarray(data),
                                model=np.asarray(str(model_path)))
    print(f"{out}: {len(rec.kinds)} frames, {len(model.paths)} paths")


if __name__ == "__main__":
    main(*sys.argv[1:4])

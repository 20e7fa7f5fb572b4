"""2-process CPU DDP (gloo, env:// as torchrun sets it): both ranks end with identical weights."""
import os
import socket

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo not available")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    from dynmm_edge.train.distributed import cleanup
    from dynmm_edge.train.loop import TrainConfig, train

    cfg = TrainConfig(preset="tiny-test", data="synthetic://?frames=8&seed=5", out=os.path.join(out_dir, "run"),
                      epochs_stage1=1, epochs_stage2=1, epochs_gate=1, batch_size=2, threads=1,
                      progress=False, seed=3)
    res = train(cfg)
    sd = {k: v.clone() for k, v in res["model"].state_dict().items()}
    torch.save({"state": sd, "rank": res["dist"].rank, "world": res["dist"].world_size,
                "batches": [h["batches"] for h in res["history"] if h["type"] == "epoch"]},
               os.path.join(out_dir, f"rank{rank}.pt"))
    cleanup(res["dist"])


def test_two_rank_gloo_identical_weights(tmp_path):
    import torch.multiprocessing as mp

    port = _free_port()
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert (r0["rank"], r1["rank"], r0["world"]) == (0, 1, 2)
    assert r0["batches"] == [2, 2, 2]  # 8 frames / 2 ranks / batch 2: each rank saw its own shard
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    # rank 0 alone wrote the artefacts
    assert (tmp_path / "run" / "final.pt").exists()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3

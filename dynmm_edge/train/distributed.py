"""torch.distributed helpers: DDP launched by torchrun (env:// init), gloo on CPU, nccl on GPU.

Only rank 0 logs, writes metrics and checkpoints; every rank computes the same data order per
epoch (DistributedSampler keyed by seed + epoch) on its own shard.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    """WORLD_SIZE as set by torchrun (1 when not launched by it)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_distributed(backend: str = "auto") -> DistInfo:
    """Join the process group described by torchrun's env vars; a no-op for a single process."""
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://")
    info = DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")), backend=backend)
    if backend == "nccl":
        torch.cuda.set_device(info.local_rank)
    return info


def wrap_ddp(module: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """DistributedDataParallel with unused-parameter detection (the gate is idle in stage I)."""
    if not info.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    device_ids = [info.local_rank] if info.backend == "nccl" else None
    return DDP(module, device_ids=device_ids, find_unused_parameters=True)


def all_reduce_mean(value: float, info: DistInfo) -> float:
    """Average a Python float over ranks (for logged losses)."""
    if not info.enabled:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def all_reduce_sum_tensor(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        t = t.clone()
        dist.all_reduce(t)
    return t


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def sync_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Average floating-point buffers (BN running stats) over ranks.

    DDP broadcasts buffers at the start of each forward, so after the last step every rank holds
    its own statistics; averaging them once per epoch leaves all ranks with identical models.
    """
    if not info.enabled:
        return
    with torch.no_grad():
        for buf in module.buffers():
            if buf.is_floating_point():
                dist.all_reduce(buf)
                buf.div_(info.world_size)

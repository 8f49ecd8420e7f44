"""Multi-GPU training under torchrun (DDP); a no-op in a plain single-process run."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as td
from torch import nn


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup() -> Dist:
    """Join the process group when launched by torchrun (it sets WORLD_SIZE/RANK/LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    td.init_process_group(backend)
    return Dist(rank=td.get_rank(), world_size=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def device_for(device: torch.device, dist: Dist) -> torch.device:
    if dist.enabled and device.type == "cuda":
        torch.cuda.set_device(dist.local_rank)
        return torch.device("cuda", dist.local_rank)
    return device


def wrap(model: nn.Module, dist: Dist, device: torch.device) -> nn.Module:
    if not dist.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def teardown(dist: Dist) -> None:
    if dist.enabled:
        td.destroy_process_group()

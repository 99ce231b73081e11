"""Extraction across processes and machines with torch.distributed (launched by torchrun).

Under `torchrun --nproc_per_node=N` (and multi-node), WORLD_SIZE > 1: each rank takes a
duration-balanced share of the videos (greedy longest-first on frame count or file size), writes
its own work files and shards, and the normalization accumulators of all ranks are combined
with all_reduce (sum and counts summed, min and max reduced). Gloo on CPU, NCCL on GPU.
"""

from __future__ import annotations

import heapq
import logging
import os
from dataclasses import dataclass
from typing import Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from claws.data.shards import NormAccumulator

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Rank:
    """Where this process stands in the job."""

    rank: int = 0  # global rank
    world_size: int = 1  # processes in the job
    local_rank: int = 0  # rank on this machine (picks the GPU)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_rank(device: str) -> Rank:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); otherwise rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Rank()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    logger.info("rank %d of %d (local rank %d, %s)", rank, world, local, backend)
    return Rank(rank, world, local)


def rank_device(device: str, rank: Rank) -> str:
    """`cuda` becomes `cuda:<local_rank>` so that each process of a machine uses its own GPU."""
    return f"cuda:{rank.local_rank}" if device == "cuda" else device


def barrier(rank: Rank) -> None:
    if rank.distributed:
        dist.barrier()


def shutdown(rank: Rank) -> None:
    if rank.distributed and dist.is_initialized():
        dist.destroy_process_group()


def balanced_split(items: Sequence[T], weights: Sequence[float], parts: int) -> list[list[T]]:
    """Greedy longest-first: each item goes to the part with the least total weight so far.

    Deterministic (ties broken by part index and item order), so every rank computes the same
    split from the same list.
    """
    heap = [(0.0, p) for p in range(parts)]
    shares: list[list[T]] = [[] for _ in range(parts)]
    order = sorted(range(len(items)), key=lambda i: (-weights[i], i))
    for i in order:
        load, p = heapq.heappop(heap)
        shares[p].append(items[i])
        heapq.heappush(heap, (load + float(weights[i]), p))
    return shares


def all_reduce_accumulator(acc: NormAccumulator, rank: Rank, device: str = "cpu") -> NormAccumulator:
    """Combine the accumulators of all ranks in place (a collective: every rank must call it)."""
    if not rank.distributed:
        return acc
    dev = torch.device(rank_device(device, rank))

    def reduce(array: np.ndarray, op) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64)).to(dev)
        dist.all_reduce(t, op=op)
        return t.cpu().numpy()

    acc.sum = reduce(acc.sum, dist.ReduceOp.SUM)
    acc.min = reduce(acc.min, dist.ReduceOp.MIN)
    acc.max = reduce(acc.max, dist.ReduceOp.MAX)
    counts = reduce(np.array([acc.num_clips, acc.num_videos], dtype=np.float64), dist.ReduceOp.SUM)
    acc.num_clips, acc.num_videos = int(counts[0]), int(counts[1])
    return acc


def all_sum(value: int, rank: Rank, device: str = "cpu") -> int:
    """Sum of an integer over ranks (e.g. failures), a collective."""
    if not rank.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=rank_device(device, rank))
    dist.all_reduce(t)
    return int(t.item())


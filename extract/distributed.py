"""Extraction across processes and machines with torch.distributed (launched by torchrun).

Under `torchrun --nproc_per_node=N` (and multi-node), WORLD_SIZE > 1: each rank takes a
duration-balanced share of the videos (greedy longest-first on frame count or file size), writes
its own work files and shards, and the normalization accumulators of all ranks are combined
with all_reduce (sum and counts summed, min and max reduced).

The collectives carry a few kilobytes (a barrier, counts, the accumulators), so they run over gloo
on CPU tensors whatever the network's device: no NCCL, whose 10-minute default timeout aborted a
job whose ranks finished further apart than that (uneven videos) at the final barrier. The
timeout is a week instead; a rank that dies does not leave the others waiting that long, since
torchrun ends the whole group when one of its processes fails. On GPUs each rank binds
cuda:LOCAL_RANK (`torch.cuda.set_device`) before joining, so nothing of a rank lands on GPU 0 by
default; an explicit `--device cuda:N` under torchrun is refused (every rank would use GPU N).
"""

from __future__ import annotations

import heapq
import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from claws.data.shards import NormAccumulator

logger = logging.getLogger(__name__)
T = TypeVar("T")
TIMEOUT = timedelta(days=7)  # ranks may finish hours apart and wait at the final barrier


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
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); otherwise rank 0 of 1.

    Args:
        device: the job's device, "cuda" (each rank takes cuda:LOCAL_RANK) or "cpu".

    Raises:
        ValueError: an explicit GPU ("cuda:N") under torchrun, before joining the group.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Rank()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda:"):
        raise ValueError(f"--device {device} under torchrun would put every rank on that one "
                         "GPU; pass --device cuda under torchrun (each rank takes cuda:LOCAL_RANK)")
    if device == "cuda":
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", timeout=TIMEOUT)
    logger.info("rank %d of %d (local rank %d, device %s)", rank, world, local,
                rank_device(device, Rank(rank, world, local)))
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


def all_reduce_accumulator(acc: NormAccumulator, rank: Rank) -> NormAccumulator:
    """Combine the accumulators of all ranks in place (a collective: every rank must call it)."""
    if not rank.distributed:
        return acc

    def reduce(array: np.ndarray, op) -> np.ndarray:
        t = torch.from_numpy(np.array(array, dtype=np.float64))  # a CPU copy: gloo
        dist.all_reduce(t, op=op)
        return t.numpy()

    acc.sum = reduce(acc.sum, dist.ReduceOp.SUM)
    acc.min = reduce(acc.min, dist.ReduceOp.MIN)
    acc.max = reduce(acc.max, dist.ReduceOp.MAX)
    counts = reduce(np.array([acc.num_clips, acc.num_videos], dtype=np.float64), dist.ReduceOp.SUM)
    acc.num_clips, acc.num_videos = int(counts[0]), int(counts[1])
    return acc


def all_sum(value: int, rank: Rank) -> int:
    """Sum of an integer over ranks (e.g. failures), a collective."""
    if not rank.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return int(t.item())


def all_gather(value: T, rank: Rank) -> list[T]:
    """Every rank's `value` (any picklable object), in rank order, on every rank (a collective)."""
    if not rank.distributed:
        return [value]
    gathered: list = [None] * rank.world_size
    dist.all_gather_object(gathered, value)
    return gathered

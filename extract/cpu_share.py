"""How many decoding workers a process gets: light (no torch), so command parsers can use it."""

from __future__ import annotations

import os


def default_workers() -> int:
    """Decoding workers per rank: the rank's share of the CPUs less one (the network's process).

    The network needs one core to feed it; every other core decodes and crops (bench/extract.py,
    bench/gpu.py). Under torchrun the CPUs are shared by LOCAL_WORLD_SIZE ranks.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, (cores or 2) // ranks - 1)

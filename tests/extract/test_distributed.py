"""Extraction across ranks (claws.extract.distributed): the split of the videos every rank
computes alike. The collectives run under torchrun in
tests/pipeline/test_extract.py::test_torchrun_two_ranks_cover_every_video_once (slow)."""

import numpy as np
import pytest

from claws.data.shards import NormAccumulator
from claws.extract.distributed import Rank, all_reduce_accumulator, all_sum, balanced_split


def test_balanced_split_longest_first_by_hand():
    items = ["a", "b", "c", "d", "e"]
    weights = [40, 10, 20, 12, 16]
    # heaviest first, each to the lighter part: 40 -> 0, 20 -> 1, 16 -> 1 (36), 12 -> 1 (48),
    # 10 -> 0 (50)
    assert balanced_split(items, weights, 2) == [["a", "b"], ["c", "e", "d"]]
    assert balanced_split(items, weights, 1) == [["a", "c", "e", "d", "b"]]
    assert balanced_split(items, weights, 7)[5:] == [[], []]  # more ranks than videos


@pytest.mark.parametrize("parts", [1, 2, 3, 8])
def test_balanced_split_gives_every_item_once_and_is_deterministic(parts):
    rng = np.random.default_rng(parts)
    items = list(range(50))
    weights = rng.integers(1, 1000, 50).tolist()
    split = balanced_split(items, weights, parts)
    assert sorted(i for share in split for i in share) == items
    assert balanced_split(items, weights, parts) == split
    loads = [sum(weights[i] for i in share) for share in split]
    assert max(loads) - min(loads) <= max(weights)  # greedy longest-first bound


def test_one_process_needs_no_collective():
    acc = NormAccumulator(2)
    acc.update(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert all_reduce_accumulator(acc, Rank()) is acc and acc.num_clips == 2
    assert all_sum(3, Rank()) == 3

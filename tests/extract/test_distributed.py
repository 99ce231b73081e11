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


class _Recorder:
    """torch.distributed and torch.cuda calls of a rank, recorded in order (no GPU, no peers)."""

    def __init__(self, monkeypatch) -> None:
        import torch
        import torch.distributed as dist

        self.calls = []
        monkeypatch.setattr(dist, "is_initialized", lambda: False)
        monkeypatch.setattr(dist, "init_process_group",
                            lambda **kw: self.calls.append(("init_process_group", kw)))
        monkeypatch.setattr(dist, "all_reduce",
                            lambda tensor, op=None: self.calls.append(("all_reduce", tensor.device.type)))
        monkeypatch.setattr(torch.cuda, "set_device", lambda d: self.calls.append(("set_device", d)))


def _torchrun(monkeypatch, rank: int = 1, local_rank: int = 1) -> None:
    for name, value in (("WORLD_SIZE", 2), ("RANK", rank), ("LOCAL_RANK", local_rank)):
        monkeypatch.setenv(name, str(value))


def test_a_cuda_rank_binds_its_gpu_and_joins_over_gloo_with_a_long_timeout(monkeypatch):
    """Issue 22 item 7: each rank binds cuda:LOCAL_RANK before joining; the collectives carry a
    few kilobytes, so gloo on CPU tensors, with a timeout far past NCCL's 10 minutes (ranks
    finish hours apart with uneven videos and wait at the final barrier)."""
    from datetime import timedelta

    from claws.extract.distributed import init_rank, rank_device

    recorder = _Recorder(monkeypatch)
    _torchrun(monkeypatch)
    rank = init_rank("cuda")
    assert (rank.rank, rank.world_size, rank.local_rank) == (1, 2, 1)
    assert rank_device("cuda", rank) == "cuda:1"
    (first, device), (second, options) = recorder.calls
    assert (first, device, second) == ("set_device", 1, "init_process_group")
    assert options["backend"] == "gloo" and options["timeout"] >= timedelta(days=1)
    acc = NormAccumulator(2)
    acc.update(np.array([[1.0, 2.0]]))
    all_reduce_accumulator(acc, rank)
    all_sum(3, rank)
    assert [c for c in recorder.calls if c[0] == "all_reduce"] == [("all_reduce", "cpu")] * 5


def test_an_explicit_gpu_under_torchrun_is_refused(monkeypatch):
    """`--device cuda:0` under torchrun would put every rank on GPU 0."""
    from claws.extract.distributed import init_rank

    recorder = _Recorder(monkeypatch)
    _torchrun(monkeypatch)
    with pytest.raises(ValueError, match=r"--device cuda:0 under torchrun.*--device cuda"):
        init_rank("cuda:0")
    assert recorder.calls == []  # refused before joining: every rank refuses alike


def test_the_command_exits_2_on_an_explicit_gpu_under_torchrun(tmp_path, monkeypatch, caplog):
    from claws.extract.synthetic import synthetic_frames, write_video
    from claws.pipeline.cli import main

    _Recorder(monkeypatch)
    _torchrun(monkeypatch, rank=0, local_rank=0)
    write_video(tmp_path / "cams" / "a.mp4", synthetic_frames(16, 24, 32))
    assert main(["extract", "footage", str(tmp_path / "cams"), "--split", "train", "--out",
                 str(tmp_path / "out"), "--weights", "random", "--device", "cuda:0"]) == 2
    assert "--device cuda under torchrun" in caplog.text and not (tmp_path / "out").exists()

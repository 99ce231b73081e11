"""Decoding workers by default: the CPUs less one, shared among the ranks of a node."""

import os

import pytest

from claws.extract.cpu_share import default_workers


@pytest.mark.parametrize("cores, ranks, expected", [(2, None, 1), (16, None, 15), (16, "8", 1),
                                                    (16, "2", 7), (1, None, 1)])
def test_default_workers(monkeypatch, cores, ranks, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    if ranks is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", ranks)
    assert default_workers() == expected

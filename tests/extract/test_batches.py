"""Network batches on streams (issue 22, items 4, 8 and 9), proved on the CPU with a fake CUDA.

`FakeStreams` stands in for claws.extract.batches.CudaStreams and records every call with the
stream it ran on; "device" tensors are `DeviceTensor`s, whose values the host may not read (a
`.cpu()`, `.item()`, `bool()` or `.numpy()` on one is a host sync on a GPU, and an error here), so
the only way back to the host is `to_host`, and the log says on which stream. What this cannot
show: the real overlap and rates (bench/gpu.py on a GPU).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

import claws.extract.batches as batches
from claws.data.videos import VideoItem
from claws.extract.batches import ClipChunk, NetworkBatches
from claws.extract.engine import extract_videos
from claws.extract.synthetic import synthetic_frames, write_video

HOST_READS = {"cpu", "numpy", "item", "tolist", "__bool__", "__int__", "__float__", "__index__",
              "__array__"}


class DeviceTensor(torch.Tensor):
    """A tensor "on the GPU": reading its values on the host is an error."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        moves_home = name == "to" and any("cpu" in str(a) for a in (*args[1:], *(kwargs or {}).values()))
        if name in HOST_READS or moves_home:
            raise AssertionError(f"the host read a device tensor ({name}): a sync on a GPU")
        return super().__torch_function__(func, types, args, kwargs or {})


class FakeStream:
    def __init__(self, log: list, name: str) -> None:
        self.log, self.name = log, name

    def wait_event(self, event: "FakeEvent") -> None:
        self.log.append(("wait", self.name, event.name))


class FakeEvent:
    def __init__(self, log: list, name: str) -> None:
        self.log, self.name = log, name

    def record(self, stream: FakeStream) -> None:
        self.log.append(("record", self.name, stream.name))

    def synchronize(self) -> None:
        self.log.append(("synchronize", self.name))


class FakeStreams:
    """CudaStreams' interface, recording each call and the stream it was made on."""

    def __init__(self, device: torch.device = torch.device("cuda")) -> None:
        self.log: list[tuple] = []
        self.upload, self.fetch = FakeStream(self.log, "upload"), FakeStream(self.log, "fetch")
        self.default = FakeStream(self.log, "compute")
        self.current = self.default
        self.events = 0

    def compute(self) -> FakeStream:
        return self.default

    def event(self) -> FakeEvent:
        self.events += 1
        return FakeEvent(self.log, f"e{self.events}")

    @contextmanager
    def using(self, stream: FakeStream):
        previous, self.current = self.current, stream
        try:
            yield
        finally:
            self.current = previous

    def pinned(self, shape, dtype) -> torch.Tensor:
        return torch.empty(tuple(shape), dtype=dtype)

    def to_device(self, host: torch.Tensor) -> torch.Tensor:
        self.log.append(("to_device", self.current.name, len(host)))
        return host.clone().as_subclass(DeviceTensor)  # the values at the time of the copy

    def to_host(self, tensor: torch.Tensor) -> torch.Tensor:
        assert isinstance(tensor, DeviceTensor)
        self.log.append(("to_host", self.current.name, tuple(tensor.shape)))
        return tensor.as_subclass(torch.Tensor).clone()

    def keep_for(self, tensor: torch.Tensor, stream: FakeStream) -> None:
        self.log.append(("keep_for", stream.name))


def _network(streams: FakeStreams):
    """features = 2 * clips + 1 on (B, 3) float clips; logs the call and its stream."""

    def network(clips: torch.Tensor) -> torch.Tensor:
        assert isinstance(clips, DeviceTensor), "the network got host memory"
        streams.log.append(("network", streams.current.name, len(clips)))
        return clips * 2 + 1

    return network


def test_one_batch_uploads_computes_checks_and_fetches_on_its_streams() -> None:
    streams = FakeStreams()
    runner = NetworkBatches(_network(streams), 4, torch.device("cuda"), streams)
    parts = runner.run([ClipChunk("a", 0, torch.ones(2, 3)), ClipChunk("a", 2, torch.zeros(1, 3)),
                        ClipChunk("b", 5, torch.full((1, 3), float("nan")))])
    assert streams.log == [
        ("to_device", "upload", 4),  # the whole buffer: a partial batch is padded to B rows
        ("record", "e1", "upload"),
        ("wait", "compute", "e1"),  # the compute stream waits for the upload, the host does not
        ("keep_for", "compute"),
        ("network", "compute", 4),
        ("record", "e2", "compute"),  # computed: after the network and the finite flags
        ("wait", "fetch", "e2"),  # the fetch waits for this batch only
        ("to_host", "fetch", (4,)),  # the batch's finite flags
        ("to_host", "fetch", (3, 3)),  # a's rows: its two contiguous pieces in one copy
        ("to_host", "fetch", (1, 3)),  # b's row, in memory of its own
        ("record", "e3", "fetch"),
        ("keep_for", "fetch"), ("keep_for", "fetch"),
    ]
    (a, part_a), (b, part_b) = parts
    assert (a, part_a.first_clip, b, part_b.first_clip) == ("a", 0, "b", 5)
    assert part_a.ready.name == part_b.ready.name == "e3"
    torch.testing.assert_close(part_a.features, torch.tensor([[3.0] * 3] * 2 + [[1.0] * 3]))
    assert part_a.finite.tolist() == [True, True, True] and part_b.finite.tolist() == [False]


def test_a_buffer_is_refilled_only_after_its_last_upload() -> None:
    streams = FakeStreams()
    runner = NetworkBatches(_network(streams), 2, torch.device("cuda"), streams)
    for index in range(3):
        runner.run([ClipChunk("a", 2 * index, torch.ones(2, 3))])
    waits = [entry for entry in streams.log if entry[0] == "synchronize"]
    assert waits == [("synchronize", "e1")]  # batch 3 reuses batch 1's buffer: its upload event


def _video(tmp_path: Path, name: str, frames: int, seed: int) -> tuple[VideoItem, np.ndarray]:
    pixels = synthetic_frames(frames, 24, 32, seed=seed)
    return VideoItem(name, write_video(tmp_path / f"{name}.mp4", pixels)), pixels


def test_engine_reads_a_video_after_the_next_batch_waiting_for_its_own_last_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake
) -> None:
    """Through extract_videos on "cuda": each finished video is read after a later batch was
    queued, by waiting for the fetch event of the video's own last batch (never a newer one);
    every network call gets B rows; the features equal the CPU path's."""
    created: list[FakeStreams] = []
    monkeypatch.setattr(batches, "CudaStreams", lambda device: created.append(FakeStreams()) or created[-1])
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)
    videos = [_video(tmp_path, f"v{i}", n, seed=i) for i, n in enumerate([70, 20, 100])]
    items = [v[0] for v in videos]
    reads: list[tuple[str, int, list]] = []

    def on_done(item, features, end):
        log = created[0].log
        reads.append((item.video_id, sum(e[0] == "network" for e in log), list(log)))
        np.testing.assert_allclose(features, fake.expected_features(_frames(videos, item)),
                                   rtol=1e-6)

    def network(clips):
        assert isinstance(clips, DeviceTensor)
        created[0].log.append(("network", created[0].current.name, len(clips)))
        return clips * 2 + 1

    extract_videos(items, network, fake.frame_means, on_done, lambda i, r: pytest.fail(r),
                   batch_size=3, workers=0, chunk_clips=2, device="cuda", progress=False)
    log = created[0].log
    calls = [e for e in log if e[0] == "network"]
    assert all(e[1:] == ("compute", 3) for e in calls)  # one shape all along
    fetch_event = {}  # fetch event name -> the network call it follows
    count = 0
    for entry in log:
        if entry[0] == "network":
            count += 1
        elif entry[0] == "record" and entry[2] == "fetch":
            fetch_event[entry[1]] = count
    assert sorted(r[0] for r in reads) == ["v0", "v1", "v2"]
    assert any(r[1] < len(calls) for r in reads)  # some read before the end-of-job flush
    for video, calls_then, seen in reads:
        waited = [fetch_event[e[1]] for e in seen if e[0] == "synchronize" and e[1] in fetch_event]
        last = waited[-1]  # the batch the host waited for just before reading this video
        assert last < calls_then or calls_then == len(calls)  # one batch late, or the flush


def _frames(videos, item):
    return next(frames for candidate, frames in videos if candidate == item)

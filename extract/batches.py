"""Network batches on the extraction device: packed, copied in, computed, checked, copied out.

Shapes: B clips per batch, D feature dim; clips as the workers make them (e.g. (B, 16, 112, 112, 3)
uint8 crops); a piece is a ClipChunk, consecutive clips of one video, inside a batch.

`NetworkBatches.run(pieces)` packs the pieces of one batch into one of two preallocated host
buffers (no `torch.cat`), runs the network and returns, per video piece, a `Part`: its features
(n, D) and per-clip finite flags (n,) in host memory of their own, and the event after which
they may be read. The flags are `isfinite(features).all(1)`, computed where the network ran and
copied with the features, so a non-finite output (an fp16 overflow) costs no host sync to find.

On CUDA (CUDA semantics: work on one stream runs in order; an event recorded on a stream
completes when the work queued there before it has; `stream.wait_event` makes that stream's later
work wait, never the host):
- upload stream: the pinned buffer is copied to the device; the compute stream waits for it;
- compute stream (the current one): the network and the flags, then the event `computed`;
- fetch stream: waits for this batch's `computed` only, copies each piece's rows, and the
  batch's flags, into new pinned host tensors, then records `fetched`.
The host waits only to refill a buffer (for its upload two batches back) and to read a finished
video (for `fetched` of its last batch). The engine reads a video once a later batch is queued,
so that wait covers the video's last batch and its copy, never the batch just queued. A piece's
rows are copied out alone, so a video still in flight holds its own features, not the GPU
outputs of every batch it touched. Every batch has B rows (the last, partial one is padded with
zeros in the buffer and its padding dropped): cudnn.benchmark then never meets a new shape, so
it never runs its algorithm search again mid-job.

On other devices the steps run in order (no streams, no padding) and each piece's rows are
copied out of the batch output at once.

Every CUDA call goes through `CudaStreams`; tests/extract/test_batches.py replaces it with a
recording fake to check which call runs on which stream, in which order.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import torch
from torch import Tensor

# (B, ...) clips on the device -> (B, D) features in new memory (the clips' buffer is reused)
Network = Callable[[Tensor], Tensor]


class ClipChunk(NamedTuple):
    """Consecutive preprocessed clips of one video (what the workers yield; a batch's piece)."""

    video_id: str
    first_clip: int  # index of clips[0] in the video
    clips: Tensor  # (c, ...) network input, host memory


class Part(NamedTuple):
    """One video's rows of one batch, in host memory of their own."""

    first_clip: int
    features: Tensor  # (n, D)
    finite: Tensor  # (n,) bool: every value of the clip's features is finite
    ready: Any  # event after which `features` and `finite` hold their values; None: already


class CudaStreams:
    """The CUDA calls of `NetworkBatches`, in one place: two side streams and what uses them."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.upload = torch.cuda.Stream(device)
        self.fetch = torch.cuda.Stream(device)

    def compute(self) -> torch.cuda.Stream:
        return torch.cuda.current_stream(self.device)

    def event(self) -> torch.cuda.Event:
        return torch.cuda.Event()

    def using(self, stream: torch.cuda.Stream):
        return torch.cuda.stream(stream)

    def pinned(self, shape: Sequence[int], dtype: torch.dtype) -> Tensor:
        return torch.empty(tuple(shape), dtype=dtype, pin_memory=True)

    def to_device(self, host: Tensor) -> Tensor:
        """Queue a copy of pinned host memory on the current stream."""
        return host.to(self.device, non_blocking=True)

    def to_host(self, tensor: Tensor) -> Tensor:
        """Queue a copy into new pinned host memory on the current stream."""
        host = self.pinned(tensor.shape, tensor.dtype)
        host.copy_(tensor, non_blocking=True)
        return host

    def keep_for(self, tensor: Tensor, stream: torch.cuda.Stream) -> None:
        """Keep the allocator from reusing the tensor's memory before `stream` is done with it."""
        tensor.record_stream(stream)


def _spans(pieces: Sequence[ClipChunk]) -> list[tuple[str, int, int, int]]:
    """(video, first clip, first row, end row) of the batch, a video's contiguous pieces merged."""
    spans: list[tuple[str, int, int, int]] = []
    row = 0
    for piece in pieces:
        end = row + len(piece.clips)
        if spans and spans[-1][0] == piece.video_id \
                and spans[-1][1] + spans[-1][3] - spans[-1][2] == piece.first_clip:
            spans[-1] = (*spans[-1][:3], end)
        else:
            spans.append((piece.video_id, piece.first_clip, row, end))
        row = end
    return spans


class NetworkBatches:
    """Runs the network on batches of pieces; see the module docstring.

    Args:
        network: (B, ...) clips on `device` -> (B, D) features in new memory (the clips' buffer
            is reused for a later batch).
        batch_size: B.
        device: where the network runs.
        streams: the CUDA calls (default: `CudaStreams` on CUDA, none elsewhere).
    """

    def __init__(self, network: Network, batch_size: int, device: torch.device,
                 streams: CudaStreams | None = None) -> None:
        self.network, self.batch_size, self.device = network, batch_size, device
        self.streams = streams if streams is not None else (
            CudaStreams(device) if device.type == "cuda" else None)
        self.buffers: list[Tensor] = []
        self.uploaded: list[Any] = [None, None]  # event: the buffer's last upload has finished
        self.turn = 0

    def _pack(self, pieces: Sequence[ClipChunk]) -> tuple[Tensor, int]:
        """The pieces' clips in the next host buffer: (what the network gets, rows used)."""
        first = pieces[0].clips
        if not self.buffers or self.buffers[0].shape[1:] != first.shape[1:] \
                or self.buffers[0].dtype != first.dtype:
            shape = (self.batch_size, *first.shape[1:])
            self.buffers = [self.streams.pinned(shape, first.dtype) if self.streams
                            else torch.empty(shape, dtype=first.dtype) for _ in range(2)]
        self.turn ^= 1
        buffer = self.buffers[self.turn]
        if self.uploaded[self.turn] is not None:
            self.uploaded[self.turn].synchronize()  # its previous batch has left for the device
        rows = 0
        for piece in pieces:
            buffer[rows:rows + len(piece.clips)].copy_(piece.clips)
            rows += len(piece.clips)
        if self.streams is None:
            return buffer[:rows], rows
        if rows < self.batch_size:
            buffer[rows:].zero_()  # one batch shape on the GPU: no new cudnn.benchmark search
        return buffer, rows

    def run(self, pieces: Sequence[ClipChunk]) -> list[tuple[str, Part]]:
        """Run one batch; (video id, Part) per video span, in batch order."""
        batch, _ = self._pack(pieces)
        if self.streams is None:
            return self._run_in_order(batch, pieces)
        return self._run_on_streams(batch, pieces)

    def _run_in_order(self, batch: Tensor, pieces: Sequence[ClipChunk]) -> list[tuple[str, Part]]:
        with torch.inference_mode():
            features = self.network(batch if self.device.type == "cpu" else batch.to(self.device))
            finite = torch.isfinite(features).all(1)
            return [(video, Part(first, features[a:b].to("cpu", copy=True),
                                 finite[a:b].to("cpu", copy=True), None))
                    for video, first, a, b in _spans(pieces)]

    def _run_on_streams(self, batch: Tensor, pieces: Sequence[ClipChunk]) -> list[tuple[str, Part]]:
        streams = self.streams
        compute = streams.compute()
        # all of it in inference mode: record_stream counts as an in-place op on its tensor
        with torch.inference_mode():
            with streams.using(streams.upload):
                on_device = streams.to_device(batch)
                uploaded = streams.event()
                uploaded.record(streams.upload)
            self.uploaded[self.turn] = uploaded
            compute.wait_event(uploaded)
            streams.keep_for(on_device, compute)
            features = self.network(on_device)
            finite = torch.isfinite(features).all(1)  # on the device: no host sync
            computed = streams.event()
            computed.record(compute)
            streams.fetch.wait_event(computed)  # this batch only, not what is queued after it
            with streams.using(streams.fetch):
                flags = streams.to_host(finite)
                parts = [(video, Part(first, streams.to_host(features[a:b]), flags[a:b], None))
                         for video, first, a, b in _spans(pieces)]
                fetched = streams.event()
                fetched.record(streams.fetch)
            streams.keep_for(features, streams.fetch)
            streams.keep_for(finite, streams.fetch)
        return [(video, part._replace(ready=fetched)) for video, part in parts]


def read_parts(parts: Sequence[Part]) -> tuple[Tensor, int]:
    """One video's parts (in clip order) as (T, D) float32 host features and its non-finite clips.

    Waits for the newest part's `ready` event (the fetch stream runs in order, so the older
    parts are ready then too).
    """
    newest = [p.ready for p in parts if p.ready is not None]
    if newest:
        newest[-1].synchronize()
    features = torch.cat([p.features for p in parts]).float()
    bad = len(features) - int(torch.cat([p.finite for p in parts]).sum())
    return features, bad

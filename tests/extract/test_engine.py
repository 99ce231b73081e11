"""The extraction engine with a fake network: the workers' clip stream (chunks in order, a
padded tail, a bad video failed alone), clip arithmetic, batching across videos, a video alone
equals the same video in a batch job, failures do not stop the job."""

from pathlib import Path

import numpy as np
import pytest
import torch

from claws.data.videos import VideoItem
from claws.extract.engine import ClipStream, VideoEnd, VideoFailed, extract_videos
from claws.extract.synthetic import synthetic_frames, write_frame_folder, write_video


def _run(items, network, **kw):
    done, failed = {}, {}
    counters = extract_videos(
        items, network, type(network).preprocess,
        lambda item, feats, end: done.__setitem__(item.video_id, (feats, end)),
        lambda item, reason: failed.__setitem__(item.video_id, reason),
        progress=False, **kw,
    )
    return done, failed, counters


def _video(tmp_path: Path, name: str, n: int, seed: int = 0) -> tuple[VideoItem, np.ndarray]:
    frames = synthetic_frames(n, 24, 32, seed=seed, event=(n // 3, n // 2 + 1))
    return VideoItem(name, write_video(tmp_path / f"{name}.mp4", frames)), frames


def test_clip_stream_chunks_in_order_then_the_end_and_a_bad_video_fails_alone(tmp_path):
    from claws.extract.video import decode_all

    item, _ = _video(tmp_path, "v", 50)  # 4 clips: a chunk of 3, then the padded tail
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    stream = ClipStream([VideoItem("bad", bad), item], lambda clips: torch.from_numpy(clips.copy()),
                        chunk_clips=3)
    failed, *chunks, end = list(stream)
    assert isinstance(failed, VideoFailed) and failed.video_id == "bad" and failed.reason
    assert [(c.video_id, c.first_clip, len(c.clips)) for c in chunks] == [("v", 0, 3), ("v", 3, 1)]
    assert isinstance(end, VideoEnd) and (end.video_id, end.num_frames) == ("v", 50)
    frames = decode_all(item.path)
    padded = np.concatenate([frames, np.repeat(frames[-1:], 64 - 50, axis=0)])  # (64, H, W, 3)
    clips = torch.cat([c.clips for c in chunks]).numpy()  # (4, 16, H, W, 3)
    np.testing.assert_array_equal(clips.reshape(padded.shape), padded)
    with pytest.raises(ValueError, match="chunk_clips must be >= 1"):
        ClipStream([item], lambda clips: clips, chunk_clips=0)


@pytest.mark.parametrize("num_frames", [1, 15, 16, 17, 31, 32, 33])
def test_clip_edge_cases(tmp_path, fake, num_frames):
    item, frames = _video(tmp_path, "v", num_frames)
    done, failed, _ = _run([item], fake.Network(), workers=0, chunk_clips=1, batch_size=3)
    feats, end = done["v"]
    assert failed == {} and end.num_frames == num_frames
    np.testing.assert_allclose(feats, fake.expected_features(frames), rtol=1e-6)


def test_alone_equals_batch_job_with_workers(tmp_path, fake):
    videos = [_video(tmp_path, f"v{i}", n, seed=i) for i, n in enumerate([50, 7, 33, 16, 81])]
    alone = {}
    for item, _ in videos:
        done, _, _ = _run([item], fake.Network(), workers=0, batch_size=1)
        alone[item.video_id] = done[item.video_id][0]
    net = fake.Network()
    done, failed, counters = _run([v[0] for v in videos], net, workers=2, chunk_clips=2, batch_size=5)
    assert failed == {} and set(done) == set(alone)
    for vid, feats in alone.items():
        np.testing.assert_array_equal(done[vid][0], feats)
    total = sum(len(f) for f in alone.values())
    # clips of several videos share batches: ceil(total / 5) calls, not one per video chunk
    assert net.clips == total == counters["clips"] and net.calls == -(-total // 5)


def test_corrupt_video_among_good_ones(tmp_path, shared_data, fake):
    good = [_video(tmp_path, f"g{i}", 20, seed=i) for i in range(3)]
    cut = tmp_path / "bad.mp4"
    cut.write_bytes((shared_data / "videos" / "wannaworktogether.mp4").read_bytes()[:50_000])
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    (tmp_path / "noframes").mkdir()
    items = [good[0][0], VideoItem("bad", cut), good[1][0], VideoItem("empty", empty),
             VideoItem("noframes", tmp_path / "noframes", is_frame_folder=True), good[2][0]]
    done, failed, counters = _run(items, fake.Network(), workers=2, batch_size=4)
    assert set(done) == {"g0", "g1", "g2"} and counters["videos_failed"] == 3
    assert "unreadable" in failed["bad"] and "empty file" in failed["empty"]
    assert "zero frames" in failed["noframes"]
    for item, frames in good:
        np.testing.assert_allclose(done[item.video_id][0], fake.expected_features(frames), rtol=1e-6)


def test_frame_folder_and_fps(tmp_path, fake):
    frames = synthetic_frames(20, 24, 32)
    folder = write_frame_folder(tmp_path / "01_0014", frames, ext="png")
    done, _, _ = _run([VideoItem("01_0014", folder, is_frame_folder=True, fps=24.0)],
                      fake.Network(), workers=1)
    feats, end = done["01_0014"]
    assert end.fps == 24.0 and end.num_frames == 20
    np.testing.assert_allclose(feats, fake.expected_features(frames), rtol=1e-6)


def test_real_crops_through_the_engine_equal_the_direct_path(tmp_path):
    """Workers ship uint8 crops packed into the reused batch buffer; the features equal the
    network on the same crops computed directly, for every batch (no buffer reuse leaks)."""
    from claws.extract.c3d import crop_clips
    from claws.extract.video import decode_all

    item, _ = _video(tmp_path, "v", 70)  # 5 clips: batches of 2, 2, 1 reuse both buffers
    frames = decode_all(item.path)
    seen = []

    def network(crops):
        assert crops.dtype == torch.uint8 and crops.shape[1:] == (16, 112, 112, 3)
        seen.append(crops.data_ptr())
        return crops.float().mean(dim=(1, 2, 3))  # (B, 3) channel means, new memory

    done = {}
    extract_videos([item], network, crop_clips, lambda i, f, e: done.__setitem__(i.video_id, f),
                   lambda i, r: pytest.fail(r), batch_size=2, workers=1, progress=False)
    padded = np.concatenate([frames, np.repeat(frames[-1:], 80 - 70, axis=0)])
    expected = crop_clips(padded.reshape(5, 16, *frames.shape[1:])).float().mean(dim=(1, 2, 3))
    np.testing.assert_array_equal(done["v"], expected.numpy())
    assert len(set(seen)) == 2  # two preallocated buffers take turns, nothing new per batch


def test_lazy_assembler_finishes_a_video_only_after_the_next_batch(fake):
    """On a GPU a video's features are fetched only once a later batch is queued (no wait on
    the batch just launched); a flush at the end fetches the rest."""
    from claws.extract.engine import ClipChunk, _Assembler

    assembler = _Assembler(lambda clips: clips * 2, 2, torch.device("cpu"))
    assembler.lazy = True
    assembler.add(ClipChunk("a", 0, torch.ones(2, 3)))
    assert assembler.network_calls == 1 and not assembler.complete("a", flushing=False)
    assembler.add(ClipChunk("b", 0, torch.ones(2, 3)))
    assert assembler.complete("a", flushing=False) and not assembler.complete("b", flushing=False)
    assert assembler.complete("b", flushing=True)


def test_default_batch_size_by_device():
    from claws.extract.engine import default_batch_size

    assert default_batch_size("cpu") == 16 and default_batch_size("cuda:1") == 128


def test_a_video_in_flight_holds_its_own_rows_not_whole_batch_outputs():
    """Issue 22 item 8: the rows of a video still being extracted are copied out of the batch
    output, so they do not keep the whole output (on a GPU: device memory) alive."""
    from claws.extract.engine import ClipChunk, _Assembler

    assembler = _Assembler(lambda clips: clips * 2, 4, torch.device("cpu"))
    assembler.add(ClipChunk("long", 0, torch.ones(2, 3)))
    assembler.add(ClipChunk("short", 0, torch.ones(2, 3)))  # fills the batch: one network call
    assert assembler.network_calls == 1 and len(assembler.parts["long"]) == 1
    held = assembler.parts["long"][0][1]  # the rows of "long" (2, 3)
    assert held.untyped_storage().nbytes() == held.numel() * held.element_size()  # not (4, 3)


def test_non_finite_features_fail_that_video_alone(tmp_path, fake):
    """Issue 22 items 3 and 5: NaN or inf in a video's features (an fp16 overflow) fails that
    video with a reason that says what to do; the others, sharing its batches, are done."""
    videos = [_video(tmp_path, f"v{i}", 40, seed=i)[0] for i in (0, 2)]
    black = VideoItem("black", write_video(tmp_path / "black.mp4", np.zeros((40, 24, 32, 3), np.uint8)))

    class Overflowing(fake.Network):  # inf wherever a clip is all black
        def __call__(self, clips):
            out = super().__call__(clips)
            return torch.where((clips == 0).all(1, keepdim=True), float("inf"), out)

    done, failed, counters = _run([videos[0], black, videos[1]], Overflowing(), workers=0,
                                  batch_size=2)
    assert set(done) == {"v0", "v2"} and set(failed) == {"black"}
    assert "non-finite" in failed["black"] and "--precision bf16 or fp32" in failed["black"]
    assert counters["videos_failed"] == 1 and counters["videos_done"] == 2

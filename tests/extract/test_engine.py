"""The extraction engine with a fake network: clip arithmetic, batching across videos,
a video alone equals the same video in a batch job, failures do not stop the job."""

from pathlib import Path

import numpy as np
import pytest

from claws.data.synthetic import synthetic_frames, write_frame_folder, write_video
from claws.data.videos import VideoItem
from claws.extract.engine import extract_videos


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

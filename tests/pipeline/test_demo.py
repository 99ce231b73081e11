"""`claws demo` end to end through the console entry point, on a tiny synthetic set."""

import json
from pathlib import Path

import numpy as np
import pytest

from claws.data.shards import ShardSet
from claws.pipeline.cli import main


@pytest.mark.slow
def test_demo_runs_every_stage_and_reruns_without_recomputing(tmp_path: Path, capsys):
    argv = ["demo", "--out", str(tmp_path), "--train-videos", "4", "--test-videos", "2",
            "--iterations", "20", "--video-frames", "20"]
    assert main(argv) == 0
    shards = ShardSet(tmp_path / "shards")
    assert len(shards) == 6 and len(shards.select(split="train")) == 4
    assert all(v.extractor["random"] for v in shards)  # random weights are recorded
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert report["num_videos"] == 2 and 0.0 <= report["auc"] <= 1.0
    for vid in ("test_normal_00", "test_anomalous_01"):
        curve = np.load(tmp_path / "scores" / f"{vid}.npy")
        assert curve.shape == (shards.videos[vid].num_frames,)
    # the raw-footage score equals the shard score of the same video
    np.testing.assert_allclose(np.load(tmp_path / "scores_raw" / "test_anomalous_01.npy"),
                               np.load(tmp_path / "scores" / "test_anomalous_01.npy"), atol=1e-5)
    out = capsys.readouterr().out
    assert "RANDOM" in out and "claws demo finished" in out
    finished = [tmp_path / "runs" / "claws" / "checkpoints" / "last.pt", *shards.files,
                tmp_path / "scores" / "test_normal_00.npy"]
    stamps = [p.stat().st_mtime_ns for p in finished]
    assert main(argv) == 0  # a rerun resumes every stage and recomputes nothing
    assert [p.stat().st_mtime_ns for p in finished] == stamps

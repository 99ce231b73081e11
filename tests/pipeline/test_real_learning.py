"""The learning stage on REAL features: CLAWS Net trained on real UCF-Crime C3D segment features
(../shared/data/features/ucf_c3d32) through the user's commands detects real anomalies.

A short run (600 iterations, about 2.5 passes over the 244 training videos), so the bar is below
the benchmark's figures (bench/real_features.py: about 0.78 frame AUC after 3,000 iterations):
frame AUC and the score gap well above chance on the 60 real test videos, and the clustering
distance moving the paper's way (normal videos' two centres closer, anomalous ones' apart).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claws.pipeline.cli import main

pytestmark = pytest.mark.slow
QUIET = ["--no-progress"]


@pytest.fixture(scope="module")
def real_shards(tmp_path_factory, shared_data) -> Path:
    pack = shared_data / "features" / "ucf_c3d32"
    if not pack.is_dir():
        pytest.skip(f"real feature pack not found at {pack}")
    ucf = shared_data / "ucf_crime"
    out = tmp_path_factory.mktemp("real") / "shards"
    sources = [pack / f"{name}.npz" for name in ("vantage_c3d32_train", "vantage_c3d32_test",
                                                  "sultani_c3d32_test", "bku_c3d32_test")]
    assert main(["import-features", "ucf-crime", "--segments", "32", "--l2-normalize",
                 "--feature-dim", "2048", "--network", "c3d_fc6", "--features", *map(str, sources),
                 "--segment-bounds", str(pack / "segments.npz"), "--bounds-prefix", "vantage",
                 "--train-list", str(ucf / "Anomaly_Train.txt"),
                 "--test-annotation", str(ucf / "Temporal_Anomaly_Annotation.txt"),
                 "--frame-counts", str(ucf / "Train_Annotation.txt"), str(ucf / "Test_Annotation.txt"),
                 "--allow-missing", "--out", str(out)] + QUIET) == 0
    return out


def test_claws_learns_real_anomalies(real_shards, shared_data, tmp_path):
    ucf = shared_data / "ucf_crime"
    runs = tmp_path / "runs"
    assert main(["train", "--preset", "claws", "--shards", str(real_shards), "--runs-dir", str(runs),
                 "--name", "real", "--iterations", "600", "--log-every", "100",
                 "--checkpoint-every", "600"]) == 0
    scores = tmp_path / "scores"
    assert main(["score", "--run", str(runs / "real"), "--shards", str(real_shards), "--split",
                 "test", "--out", str(scores)] + QUIET) == 0
    test_videos = tmp_path / "test.txt"
    test_videos.write_text("\n".join(p.stem for p in scores.glob("*.npy")) + "\n")
    report = tmp_path / "report"
    assert main(["evaluate", str(scores), "--ucf-annotations",
                 str(ucf / "Temporal_Anomaly_Annotation.txt"), "--ucf-frame-counts",
                 str(ucf / "Test_Annotation.txt"), "--videos", str(test_videos), "--out", str(report),
                 "--no-video-plots"] + QUIET) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert (metrics["num_videos"], metrics["num_anomalous_videos"]) == (60, 25)
    assert metrics["auc"] > 0.70 and metrics["score_gap"] > 0.15, metrics
    records = [json.loads(line) for line in (runs / "real" / "metrics.jsonl").read_text().splitlines()]
    clustering = [r for r in records if r["kind"] == "clustering"]
    first, last = clustering[0], clustering[-1]
    assert last["distance_anomalous"] - last["distance_normal"] > (
        first["distance_anomalous"] - first["distance_normal"] + 0.1)

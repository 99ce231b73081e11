"""bench/decoders.py --quick runs end to end and prints the JSON the README's decoder table uses."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "decoders.py"
ROW_KEYS = {"status", "version", "fps", "frames", "identical_fraction", "max_abs_diff",
            "slow_consumer_wait_fps", "slow_consumer_cpu_fps", "peak_rss_short_mb",
            "peak_rss_long_mb", "peak_long_minus_short_mb", "problems"}


@pytest.mark.slow  # about 25-45 s on a shared 2-core CPU: one process per decoder, some import torch
def test_quick_bench_prints_a_row_per_decoder(tmp_path):
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--decord2-path",
                           str(tmp_path / "no_decord2_here")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["bench"] == "decoders"
    assert {"threads", "chunk_frames", "consumer_ms_per_chunk", "videos", "candidates", "note",
            "exact_frames_per_video", "seconds"} <= set(result)
    rows = result["candidates"]
    assert set(rows) == {"decord_flush", "decord", "decord2", "pyav", "torchcodec", "claws"}
    # a folder without decord2 is a row that says so, not a crash
    assert rows["decord2"]["status"].startswith("not installed")
    for name in ("pyav", "claws"):  # PyAV is a dependency; the claws reader decodes with it
        row = rows[name]
        assert row["status"] == "ok" and ROW_KEYS <= set(row), (name, row)
        (video,) = result["videos"]
        assert row["frames"][video] == result["videos"][video]["frames_ref"] > 0
        assert row["identical_fraction"][video] == 1.0 and row["max_abs_diff"][video] == 0
        assert row["fps"][video] > 0 and row["peak_long_minus_short_mb"] is not None
    assert rows["claws"]["version"] == "decoder pyav"
    for name, row in rows.items():  # every row is either measured or says why not
        assert row["status"] == "ok" or row["status"].startswith("not installed"), (name, row)

"""bench/gpu.py and bench/extract.py run end to end on the CPU at tiny sizes and print the JSON
the README quotes (on a GPU, bench/gpu.py runs the same code at full size)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _run(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # about 1 minute on a shared 2-core CPU: real C3D on a few clips
def test_gpu_bench_runs_tiny_on_the_cpu():
    result = _run("gpu.py", "--device", "cpu", "--tiny")
    assert result["bench"] == "gpu" and result["device"] == "cpu" and result["tiny"]
    assert result["network_clips_per_s"]["fp32"]["2"] > 0
    assert result["pipeline_clips_per_s"] > 0 and result["network_alone_clips_per_s"] > 0
    assert result["cpu_crop_clips_per_s_per_core"] > 0 and result["pipeline_clips"] >= 2
    assert set(result["ucf_crime_hours"]) == {"pipeline", "network_alone", "workers_crop_bound"}
    assert result["bound_by"] in ("network", "decode and crop on the CPU")
    assert isinstance(result["agreement_vs_fp32"], dict)  # fp16/bf16 rows where measured
    assert "partial" not in result and result["skipped"] == [] and result["pipeline_vs_network"] > 0
    assert result["footage"] == "h264 320x240 30 fps" and result["clips_source"]


def test_gpu_bench_keeps_its_time_limit_and_falls_back_visibly_without_pyav():
    """`--time-limit 0`: the network and the pipeline are skipped and said so, the JSON still
    comes; without PyAV the footage is JPEG frame folders and the clips synthetic, both said."""
    code = ("import runpy, sys; sys.modules['av'] = None; sys.path.insert(0, sys.argv[1]); "
            "sys.argv = [sys.argv[1] + '/gpu.py'] + sys.argv[2:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code, str(BENCH), "--device", "cpu", "--tiny",
                           "--time-limit", "0"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    *partial, result = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert partial and all(line["partial"] for line in partial) and "partial" not in result
    assert result["skipped"] == ["network fp32", "pipeline"] and result["network_clips_per_s"] == {}
    assert result["footage"] == "jpeg frame folders (PyAV missing)"
    assert result["clips_source"] == "synthetic 320x240" and result["cpu_crop_clips_per_s_per_core"] > 0
    assert "PyAV is not installed" in done.stderr


@pytest.mark.slow  # about 1-2 minutes: two alternations of network and pipeline, two videos
def test_extract_bench_prints_its_ratios(shared_data: Path):
    video = shared_data / "videos" / "vtest.avi"  # skips, saying why, without ../shared/data
    result = _run("extract.py", "--video", str(video), "--frames", "48", "--rounds", "1",
                  "--batch-size", "2", "--minutes", "0.05", "0.1")
    fp32 = result["precisions"]["fp32"]
    assert fp32["pipeline_vs_network"] > 0 and fp32["pipeline_equals_network_features"] is True
    assert result["pipeline_vs_network"] == min(
        r["pipeline_vs_network"] for r in result["precisions"].values() if isinstance(r, dict))
    assert result["peak_memory_10min_minus_1min_mb"] is not None
    assert result["baseline_clips_per_s"] > 0

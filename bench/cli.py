"""Benchmark of the `claws` command's start-up: `claws --help` against a bare interpreter and torch.

    .venv/bin/python bench/cli.py [--repeats 5]

Runs, in one go and with this interpreter, `python -c pass`, `python -c "import torch"` and
`claws --help` (the console script beside this interpreter, else `python -m claws.pipeline.cli
--help`), each as a fresh subprocess, best of --repeats. Prints one JSON line: the best wall
times in seconds and the ratios `help_over_python` (start-up cost over a bare interpreter; near 1
means the help costs nothing beyond Python itself) and `help_over_torch` (well under 1 means the
help does not import torch).
Compare the ratios, not absolute times: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path


def best_wall_time(argv: list[str], repeats: int) -> float:
    """The shortest wall time of `repeats` runs of argv (each must exit 0), in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command; the best counts")
    args = parser.parse_args()
    python = sys.executable
    script = Path(python).with_name("claws")
    claws = [str(script)] if script.is_file() else [python, "-m", "claws.pipeline.cli"]
    seconds = {
        "python_pass_s": best_wall_time([python, "-c", "pass"], args.repeats),
        "import_torch_s": best_wall_time([python, "-c", "import torch"], args.repeats),
        "claws_help_s": best_wall_time([*claws, "--help"], args.repeats),
    }
    print(json.dumps({
        **{k: round(v, 4) for k, v in seconds.items()},
        "help_over_python": round(seconds["claws_help_s"] / seconds["python_pass_s"], 2),
        "help_over_torch": round(seconds["claws_help_s"] / seconds["import_torch_s"], 3),
        "command": " ".join(Path(c).name for c in claws) + " --help", "repeats": args.repeats,
        "python": platform.python_version(), "machine": platform.machine(),
    }))


if __name__ == "__main__":
    main()

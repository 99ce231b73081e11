"""Command-line options that several commands share (light: the standard library only).

`claws extract`, `claws import-features` and `claws score` take the same dataset lists, shard
output options and C3D precisions; they are defined once here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# --precision: the keys of claws.extract.c3d.PRECISIONS (a torch module), or auto.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def add_shard_output_options(p: argparse.ArgumentParser, missing: str) -> None:
    """Options every command that writes shards shares (extract, import-features)."""
    p.add_argument("--shard-size", metavar="N", type=int, default=64, help="videos per shard file")
    p.add_argument("--stats-from", metavar="PATH", type=Path, default=None,
                   help="normalize with the statistics of an earlier run (shard dir/file or "
                   "checkpoint); default: those of this job's training videos")
    p.add_argument("--allow-missing", action="store_true",
                   help=f"skip listed videos {missing} instead of stopping")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_list_options(ucf: argparse.ArgumentParser, sht: argparse.ArgumentParser) -> None:
    """The split lists of UCF-Crime and ShanghaiTech (extract, import-features)."""
    ucf.add_argument("--train-list", metavar="FILE", type=Path,
                     help="Anomaly_Train.txt (the training videos)")
    ucf.add_argument("--test-annotation", metavar="FILE", type=Path,
                     help="Temporal_Anomaly_Annotation.txt or Test_Annotation.txt (the test videos)")
    sht.add_argument("--train-list", metavar="FILE", type=Path,
                     help="SH_Train.txt (the training videos)")
    sht.add_argument("--test-list", metavar="FILE", type=Path, help="SH_Test.txt (the test videos)")

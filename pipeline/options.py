"""Command-line options that several commands share (light: the standard library only).

`claws extract`, `claws import-features`, `claws score` and `claws watch` take the same dataset
lists, shard output options, C3D options and event rule; they are defined once here. So is the
range of every numeric option (`Range`, made by `number` and `integer`): it is the option's argparse
`type`, so a value out of range is a usage error naming the option (exit 2) before any work,
`claws COMMAND --help` shows it (cli.HelpFormatter), and the training config checks its YAML values
with the same ranges.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

# --precision: the keys of claws.extract.c3d.PRECISIONS (a torch module), or auto.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _shown(value: float) -> str:
    """A bound as a user would type it: 1000000 as 1e6, 1.0 as 1, 65536 and 0.0001 as they are."""
    if float(value).is_integer() and abs(value) < 1e16:
        whole = int(value)
        mantissa, exponent = f"{whole:.2e}".split("e")
        if abs(whole) >= 100_000 and float(mantissa) * 10 ** int(exponent) == whole:
            return f"{float(mantissa):g}e{int(exponent)}"
        return str(whole)
    return f"{value:g}".replace("e-0", "e-")


@dataclass(frozen=True)
class Range:
    """The values a numeric option or config key takes; called on a command-line string, it is an
    argparse `type` (argparse then names the option in its usage error)."""

    kind: type  # int or float; a float must also be finite
    low: float | None = None  # smallest value, None: no bound
    high: float | None = None  # largest value, None: no bound
    low_open: bool = False  # True: low itself is excluded (e.g. a learning rate > 0)
    high_open: bool = False  # True: high itself is excluded (e.g. a dropout rate < 1)
    zero: bool = False  # True: 0 is also allowed, outside [low, high] (0 = "the default")

    def describe(self) -> str:
        """The range in words, e.g. "a number in (0, 1]" or "a whole number >= 1"."""
        what = "a whole number" if self.kind is int else "a number"
        if self.kind is float and self.high is None:
            what = "a finite number"
        if self.low is not None and self.high is not None:
            text = (f"{what} in {'(' if self.low_open else '['}{_shown(self.low)}, "
                    f"{_shown(self.high)}{')' if self.high_open else ']'}")
        elif self.low is not None:
            text = f"{what} {'>' if self.low_open else '>='} {_shown(self.low)}"
        elif self.high is not None:
            text = f"{what} {'<' if self.high_open else '<='} {_shown(self.high)}"
        else:
            text = what
        return f"0 or {text}" if self.zero else text

    def contains(self, value: float) -> bool:
        """Whether `value` (already of the right type) is in the range."""
        if self.zero and value == 0:
            return True
        if self.kind is float and not math.isfinite(value):
            return False
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return low_ok and high_ok

    def check(self, value: float, name: str) -> float:
        """`value` itself when in range, else ValueError "NAME must be <range>, got VALUE"."""
        if not self.contains(value):
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}")
        return value

    def __call__(self, text: str) -> float:
        """The value of a command-line string (an int may be written 1e5); ArgumentTypeError when
        it is not a number of the kind or lies outside the range."""
        try:
            value = float(text) if self.kind is float else _whole(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or not self.contains(value):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return value


def _whole(text: str) -> int:
    """An int written as 12 or 1e5 (ValueError for 2.5, nan, inf, words)."""
    try:
        return int(text)
    except ValueError:
        value = float(text)
        if not value.is_integer():
            raise ValueError(f"not a whole number: {text!r}") from None
        return int(value)


def number(
    low: float | None = None, high: float | None = None, *, low_open: bool = False,
    high_open: bool = False, zero: bool = False,
) -> Range:
    """The range of a float option (always finite), e.g. number(0, 1) for a score threshold."""
    return Range(float, low, high, low_open, high_open, zero)


def integer(low: int | None = None, high: int | None = None) -> Range:
    """The range of an int option, e.g. integer(1) for a count."""
    return Range(int, low, high)


# Ranges several commands share. A frame score is a sigmoid output, in [0, 1].
SCORE = number(0.0, 1.0)
# Event lengths and gaps: finite, and a million seconds (11.6 days) bounds frame arithmetic.
SECONDS = number(0.0, 1e6)
# Frame rates: 0 = the decoder's or the dataset's; time-lapse (0.01) to high-speed (1000).
FPS = number(0.01, 1000.0, zero=True)
# Seeds: torch.Generator.manual_seed takes up to 2**64 - 1, and training derives per-step seeds
# as seed * 1_000_003 + step (claws.model.windows.derived_seed), so a seed stays below 2**32.
SEED = integer(0, 2**32 - 1)
# Clips per window, in training and scoring (paper 4.3: 64).
WINDOW = integer(1, 100_000)
# Decoding worker processes (0 decodes in the main process).
WORKERS = integer(0, 1024)


def add_shard_output_options(p: argparse.ArgumentParser, missing: str) -> None:
    """Options every command that writes shards shares (extract, import-features)."""
    p.add_argument("--shard-size", metavar="N", type=integer(1, 1_000_000), default=64,
                   help="videos per shard file")
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


def add_c3d_options(group: argparse._ArgumentGroup) -> None:
    """C3D weights, mean cube and precision of commands that score raw footage (score, watch)."""
    group.add_argument("--weights", metavar="FILE",
                       help="C3D weights (c3d.pickle, Keras .h5, or 'random' for a test run); "
                       "default: the path recorded in the checkpoint")
    group.add_argument("--mean", metavar="FILE", type=Path,
                       help="C3D mean cube (.npy[.bz2] or .binaryproto); default: the checkpoint's")
    group.add_argument("--precision", choices=PRECISIONS, default=None,
                       help="C3D arithmetic; default: the training features'")


def add_event_options(p: argparse.ArgumentParser) -> None:
    """The event rule and the scoring window (score, watch)."""
    events = p.add_argument_group("events and windows")
    events.add_argument("--threshold", metavar="SCORE", type=SCORE, default=0.5,
                        help="a frame whose score reaches this is anomalous")
    events.add_argument("--min-duration", metavar="SECONDS", type=SECONDS, default=1.0,
                        help="shortest event")
    events.add_argument("--merge-gap", metavar="SECONDS", type=SECONDS, default=1.0,
                        help="events closer than this are merged")
    events.add_argument("--window", metavar="CLIPS", type=WINDOW, default=None,
                        help="clips per scoring window; default: the training run's")

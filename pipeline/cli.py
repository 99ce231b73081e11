"""The `claws` command: one sub-command per job module.

Each module listed in COMMANDS exposes `register(subparsers)`, which adds its parser and sets
`func` (a callable taking the parsed args and returning an exit code). Only commands that work are
listed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Sub-command modules under claws.pipeline, in the order `claws --help` lists them.
COMMANDS: tuple[str, ...] = (
    "extract", "import_features", "shards_cmd", "train", "score", "evaluate", "demo",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="claws",
        description="Weakly supervised video anomaly detection (CLAWS Net): "
        "raw video to C3D feature shards to per-frame anomaly curves.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"claws.pipeline.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `claws` console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError) as err:
        # Bad input (a file, a video, an option): the message names it and says what to do.
        if args.verbose:
            raise
        logging.getLogger("claws").error("%s", err.args[0] if isinstance(err, KeyError) else err)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The `claws` command: one sub-command per command module.

Each module listed in COMMANDS exposes `register(subparsers)`, which adds its parser and sets
`func` (a callable taking the parsed args and returning an exit code). Only commands that work are
listed. Building the parser stays cheap so that `claws --help` and argument errors answer at once:
a command module imports only the standard library and light project modules at its top, and the
job's heavy modules (torch, h5py, matplotlib, decoders) are imported when its `func` runs
(tests/pipeline/test_cli.py checks it, bench/cli.py measures it). A `func` that finds its
arguments inconsistent raises argparse.ArgumentError before any work; it is reported with the
sub-command's usage, exit code 2, like any other argument error. SIGINT (Ctrl-C) and SIGTERM end a
command with one line saying what is kept and how to resume, and exit code 130 or 143
(claws.pipeline.interrupt).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from pathlib import Path

from claws.data.version import code_version
from claws.pipeline.interrupt import Interrupted, interrupt_handling
from claws.pipeline.options import Range

# Sub-command modules under claws.pipeline.commands, in the order `claws --help` lists them.
COMMANDS: tuple[str, ...] = (
    "extract", "import_features", "shards", "train", "score", "watch", "evaluate", "review",
    "demo",
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (examples keep their lines); options show their ranges and defaults.

    Unlike argparse.ArgumentDefaultsHelpFormatter it leaves out defaults that say nothing (None,
    empty values, the False of a flag) and those the help already states in words ("default: ...").
    A numeric option's range (its `type`, a claws.pipeline.options.Range) follows its help
    unless the help states it.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if isinstance(action.type, Range) and action.type.describe() not in text:
            text = f"{text}; {action.type.describe()}"
        silent = action.nargs == 0 or action.default is None or action.default in ("", [])
        if silent or action.default is argparse.SUPPRESS or "default:" in text or "%(default)" in text:
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser with HelpFormatter; add_subparsers hands the class to every sub-command."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


class _Version(argparse.Action):
    """`--version`: the installed package version, looked up only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version of claws and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"claws {code_version(commit=False)}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered sub-command."""
    parser = _Parser(
        prog="claws",
        description="Weakly supervised video anomaly detection (CLAWS Net, ECCV 2020):\n"
        "raw video to C3D feature shards to per-frame anomaly curves.",
        epilog="`claws COMMAND --help` lists the options of a command. Exit codes: 0 success,\n"
        "1 some videos failed (the rest are done), 2 bad input, 130/143 interrupted by\n"
        "SIGINT/SIGTERM (what was done is kept: rerun the same command to resume).",
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and a traceback on bad input")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"claws.pipeline.commands.{name}").register(sub)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    """The sub-command action of a parser (its `choices` map names to parsers), or None."""
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def command_parser(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The innermost sub-command parser that parsed `args` (e.g. `claws extract footage`)."""
    while (action := subcommands(parser)) is not None and getattr(args, action.dest, None):
        parser = action.choices[getattr(args, action.dest)]
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `claws` console script; returns the process exit code."""
    parser = build_parser()
    # parse_known_args, so that an unknown option is reported with the sub-command's usage, not
    # the top level's (what parse_args does).
    args, unknown = parser.parse_known_args(argv)
    command = command_parser(parser, args)
    if unknown:
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    with interrupt_handling() as outermost:
        try:
            return int(args.func(args) or 0)
        except KeyboardInterrupt as err:  # SIGINT or SIGTERM: Interrupted
            if not outermost:  # a command run by another (claws demo): the outer one says it
                raise
            stop = err if isinstance(err, Interrupted) else Interrupted(signal.SIGINT)
            print(interrupted_line(args.command, getattr(args, "out", None), stop), file=sys.stderr)
            return stop.exit_code
        except argparse.ArgumentError as err:
            command.error(str(err))
        except (ValueError, OSError, KeyError) as err:
            # Bad input (a file, a video, an option): the message names it and says what to do.
            if args.verbose:
                raise
            logging.getLogger("claws").error("%s", err.args[0] if isinstance(err, KeyError) else err)
            return 2


def videos_done(command: str, out: Path | None) -> int | None:
    """How many videos a job's output folder holds finished (None: not a per-video job).

    Args:
        command: the `claws` command ("extract", "import-features", "score", ...).
        out: its --out folder.
    """
    if out is None or not Path(out).is_dir():
        return None if command not in ("extract", "import-features", "score") else 0
    if command in ("extract", "import-features"):
        from claws.extract.resume import shard_videos, work_files  # h5py: only when it is needed

        return len(set(shard_videos(out)) | set(work_files(out)))
    if command == "score":
        from claws.pipeline.scoring.files import EVENTS_SUFFIX  # written last of a video's outputs

        return sum(1 for _ in Path(out).glob(f"*{EVENTS_SUFFIX}"))
    return None


def interrupted_line(command: str, out: Path | None, err: Interrupted) -> str:
    """The one line `claws` prints when `command` (writing `out`) was interrupted."""
    if command == "train" and err.summary:
        return err.summary
    done = videos_done(command, out)
    if done is None:
        return "interrupted: rerun the same command to resume"
    return (f"interrupted: {done} video{'' if done == 1 else 's'} done in {out}, rerun the same "
            "command to resume")


if __name__ == "__main__":
    sys.exit(main())

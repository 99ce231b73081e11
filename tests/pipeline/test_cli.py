"""The `claws` command itself: a parser that imports no heavy module, --version, usage errors
that show the sub-command's usage, and help that explains every option."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from claws.pipeline.cli import HelpFormatter, build_parser, main, subcommands
from claws.pipeline.config import TrainConfig, field_help

HEAVY = ("torch", "torchvision", "matplotlib", "h5py", "sklearn", "decord", "av")


def command_parsers() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every parser of the command line by its path of sub-command names; () is `claws` itself."""
    found, todo = {}, [((), build_parser())]
    while todo:
        path, parser = todo.pop()
        found[path] = parser
        action = subcommands(parser)
        todo += [((*path, name), sub) for name, sub in (action.choices if action else {}).items()]
    return found


def help_of(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def flat_help(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    """The help text with its line breaks and alignment folded to single spaces."""
    return " ".join(help_of(capsys, argv).split())


def usage_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_building_the_parser_imports_no_heavy_module() -> None:
    code = ("import sys; from claws.pipeline.cli import build_parser; build_parser(); "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version_is_the_installed_package(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"claws {metadata.version('claws-vad')}\n"


@pytest.mark.parametrize("argv", [
    ["train", "--shards", "s", "--bogus"],
    ["extract", "footage", "videos/", "--out", "o", "--weights", "random", "--bogus", "1"],
    ["import-features", "manifest", "m.csv", "--features", "f", "--out", "o", "--bogus"],
    ["shards", "info", "s", "--bogus"],
    ["score", "--run", "r", "--out", "o", "--bogus"],
    ["evaluate", "--out", "o", "--bogus"],
    ["demo", "--bogus"],
])
def test_unknown_argument_shows_the_sub_command_usage(capsys: pytest.CaptureFixture,
                                                      argv: list[str]) -> None:
    err = usage_error(capsys, argv)
    command = " ".join(argv[:2] if argv[0] in ("extract", "import-features", "shards") else argv[:1])
    assert err.startswith(f"usage: claws {command} ")
    assert f"claws {command}: error: unrecognized arguments: --bogus" in err


def test_train_needs_shards_unless_resume_or_config(capsys: pytest.CaptureFixture,
                                                    caplog: pytest.LogCaptureFixture,
                                                    tmp_path: Path) -> None:
    err = usage_error(capsys, ["train", "--preset", "mil"])
    assert err.startswith("usage: claws train ") and "--shards DIR is required" in err
    # --resume takes the shards from the run's saved config: here there is no run to resume
    assert main(["train", "--resume", "--runs-dir", str(tmp_path)]) == 2
    assert "no config.yaml to resume from" in caplog.text


def test_every_argument_is_explained_and_no_choice_is_empty() -> None:
    for path, parser in command_parsers().items():
        assert parser.formatter_class is HelpFormatter, path
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                assert all(choice.help for choice in action._choices_actions), path
                continue
            assert action.help, f"claws {' '.join(path)}: {action.dest} has no help"
            assert "" not in (action.choices or ()), f"claws {' '.join(path)}: {action.dest}"


@pytest.mark.parametrize("argv, line", [
    (["extract", "ucf-crime"], "--batch-size N clips per network call; 0: 16 on a CPU, 128 on a GPU "
                               "(default: 0)"),
    (["extract", "footage"], "--workers N decoding worker processes per rank (the rank's share of the "
                             "CPUs, less one for the network) (default: "),
    (["extract", "footage"], "--split {train,test} split of the videos that have none"),
    (["score"], "--threshold SCORE a frame whose score reaches this is anomalous (default: 0.5)"),
    (["score"], "--min-duration SECONDS shortest event (default: 1.0)"),
    (["evaluate"], "--threshold SCORE score threshold of the false-alarm rate (default: 0.5)"),
    (["demo"], "--precision {auto,fp32,bf16,fp16} C3D precision of the extraction and raw scoring "
               "(default: fp32, the reference)"),
])
def test_help_shows_defaults(capsys: pytest.CaptureFixture, argv: list[str], line: str) -> None:
    assert line in flat_help(capsys, argv)


def test_help_keeps_the_examples_lines(capsys: pytest.CaptureFixture) -> None:
    text = help_of(capsys, ["extract"])
    assert "--train-list Anomaly_Train.txt \\\n        --test-annotation" in text
    assert "DATASET\n    ucf-crime" in text


def test_train_flags_carry_the_config_comments(capsys: pytest.CaptureFixture) -> None:
    meanings = field_help()
    assert list(meanings) == [f.name for f in dataclasses.fields(TrainConfig)]
    assert all(meanings.values()), [k for k, v in meanings.items() if not v]
    assert meanings["lr"] == "initial learning rate (paper 4.3)"  # a trailing comment
    # the first sentence of a comment block
    assert meanings["cpu_threads"] == "torch intra-op threads on the CPU (0 = torch's default)"
    flat = flat_help(capsys, ["train"])
    for key, meaning in meanings.items():
        assert f"--{key.replace('_', '-')} " in flat
        assert " ".join(meaning.split()) in flat, key
    assert "--iterations INT optimizer steps (paper 4.3: 100k) (default: 100000)" in flat


def test_import_features_parser_constants_match_the_job() -> None:
    from claws.data.clips import CLIP_LEN
    from claws.extract.import_job import MISMATCH_POLICIES
    from claws.pipeline import import_features

    assert import_features.CLIP_LEN == CLIP_LEN
    assert import_features.MISMATCH_POLICIES == MISMATCH_POLICIES


def test_shared_options_are_defined_once() -> None:
    """extract and import-features take --stats-from etc. from claws.pipeline.options."""
    from claws.pipeline import options
    from claws.pipeline.cli import build_parser

    parser = build_parser()
    sub = {a.dest: a for a in parser._actions if a.dest == "command"}["command"].choices
    for path in (("extract", "footage"), ("import-features", "manifest")):
        command = sub[path[0]]
        command = next(a for a in command._actions if a.dest in ("dataset",)).choices[path[1]]
        stats = next(a for a in command._actions if a.dest == "stats_from")
        assert "earlier run" in stats.help
    assert options.PRECISIONS[0] == "auto"

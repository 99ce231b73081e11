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
from claws.pipeline.training.config import TrainConfig, field_help
from claws.pipeline.options import Range

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
    (["extract", "ucf-crime"], "--batch-size N clips per network call; 0: 16 on a CPU, 128 on a GPU; "
                               "a whole number in [0, 4096] (default: 0)"),
    (["extract", "footage"], "--workers N decoding worker processes per rank (the rank's share of the "
                             "CPUs, less one for the network); a whole number in [0, 1024] (default: "),
    (["extract", "footage"], "--split {train,test} split of the videos that have none"),
    (["score"], "--threshold SCORE a frame whose score reaches this is anomalous; a number in "
                "[0, 1] (default: 0.5)"),
    (["score"], "--min-duration SECONDS shortest event; a number in [0, 1e6] (default: 1.0)"),
    (["score"], "--fps FPS frame rate of frame folders, which carry none (0: the decoder's default); "
                "0 or a number in [0.01, 1000] (default: 0.0)"),
    (["evaluate"], "--threshold SCORE score threshold of the false-alarm rate; a number in [0, 1] "
                   "(default: 0.5)"),
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
    assert "--iterations INT optimizer steps (paper 4.3: 100k); a whole number in [1, 1e9] " \
        "(default: 100000)" in flat
    assert "--lr FLOAT initial learning rate (paper 4.3); a number in (0, 1] (default: 0.0001)" in flat


def test_import_features_parser_constants_match_the_job() -> None:
    from claws.data.clips import CLIP_LEN
    from claws.extract.import_job import MISMATCH_POLICIES
    from claws.pipeline.commands import import_features

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


# Issue 20 item 6: each of these exited 0 with NaN in JSON, failed every video (exit 1), or ended
# in a traceback; now argparse refuses them (exit 2) naming the option, before any work.
@pytest.mark.parametrize("argv, option, value", [
    (["score", "--run", "r", "--out", "o", "--shards", "s"], "--threshold", "nan"),
    (["score", "--run", "r", "--out", "o", "--shards", "s"], "--threshold", "inf"),
    (["score", "--run", "r", "--out", "o", "--shards", "s"], "--threshold", "1.5"),
    (["score", "--run", "r", "--out", "o", "--shards", "s"], "--min-duration", "inf"),
    (["score", "--run", "r", "--out", "o", "--shards", "s"], "--min-duration", "-1"),
    (["score", "--run", "r", "--out", "o", "--shards", "s"], "--merge-gap", "nan"),
    (["score", "--run", "r", "--out", "o", "--shards", "s"], "--window", "-3"),
    (["score", "--run", "r", "--out", "o", "--shards", "s"], "--window", "0"),
    (["score", "v.mp4", "--run", "r", "--out", "o"], "--fps", "-5"),
    (["score", "v.mp4", "--run", "r", "--out", "o"], "--fps", "nan"),
    (["score", "v.mp4", "--run", "r", "--out", "o"], "--workers", "-1"),
    (["evaluate", "s", "--out", "o", "--intervals", "i.csv"], "--threshold", "nan"),
    (["extract", "footage", "v", "--out", "o", "--weights", "random"], "--batch-size", "-1"),
    (["extract", "footage", "v", "--out", "o", "--weights", "random"], "--shard-size", "0"),
    (["extract", "footage", "v", "--out", "o", "--weights", "random"], "--seed",
     "99999999999999999999"),
    (["extract", "footage", "v", "--out", "o", "--weights", "random"], "--seed", "-1"),
    (["extract", "footage", "v", "--out", "o", "--weights", "random"], "--workers", "-2"),
    (["extract", "footage", "v", "--out", "o", "--weights", "random"], "--chunk-clips", "0"),
    (["extract", "ucf-crime", "--root", "r", "--out", "o", "--weights", "random"], "--seed", "1.5"),
    (["import-features", "manifest", "m.csv", "--features", "f", "--out", "o"], "--fps", "-5"),
    (["import-features", "manifest", "m.csv", "--features", "f", "--out", "o"], "--clip-len", "0"),
    (["import-features", "manifest", "m.csv", "--features", "f", "--out", "o"], "--segments", "0"),
    (["import-features", "manifest", "m.csv", "--features", "f", "--out", "o"], "--feature-dim",
     "-4"),
    (["import-features", "ucf-crime", "--features", "f", "--out", "o"], "--shard-size", "0"),
    (["train", "--shards", "s"], "--lr", "1e30"),
    (["train", "--shards", "s"], "--lr", "inf"),
    (["train", "--shards", "s"], "--lr", "nan"),
    (["train", "--shards", "s"], "--lr", "0"),
    (["train", "--shards", "s"], "--iterations", "0"),
    (["train", "--shards", "s"], "--window", "-3"),
    (["train", "--shards", "s"], "--lambda1", "2"),
    (["train", "--shards", "s"], "--alpha", "nan"),
    (["train", "--shards", "s"], "--dropout", "1"),
    (["train", "--shards", "s"], "--seed", "99999999999999999999"),
    (["train", "--shards", "s"], "--val-fraction", "-0.1"),
    (["train", "--shards", "s"], "--cpu-threads", "-1"),
    (["demo"], "--train-videos", "1"),
    (["demo"], "--iterations", "1"),
    (["demo"], "--video-frames", "8"),
    (["demo"], "--seed", "-1"),
])
def test_an_option_out_of_its_range_is_a_usage_error_naming_it(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    argv: list[str], option: str, value: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    err = usage_error(capsys, [*argv, option, value])
    assert f"error: argument {option}: expected " in err and repr(value) in err, err
    assert list(tmp_path.iterdir()) == []  # nothing was started


def numeric_options() -> list[tuple[tuple[str, ...], argparse.Action]]:
    return [(path, action) for path, parser in command_parsers().items()
            for action in parser._actions
            if action.option_strings and not isinstance(action, argparse._SubParsersAction)
            and (action.type in (int, float) or isinstance(action.type, Range)
                 or isinstance(action.default, (int, float)) and not isinstance(action.default, bool))]


def test_every_numeric_option_has_a_range_shown_in_its_help(capsys: pytest.CaptureFixture) -> None:
    options = numeric_options()
    assert len(options) > 60  # train's keys, and extract, score, evaluate, import-features, demo
    for path, action in options:
        name = f"claws {' '.join(path)} {action.option_strings[-1]}"
        if action.choices:  # extract --feature-dim {2048,4096}
            continue
        assert isinstance(action.type, Range), name
        flat = flat_help(capsys, list(path))
        assert f"{action.option_strings[-1]} " in flat
        assert action.type.describe() in flat, name
        if action.default not in (None, argparse.SUPPRESS):
            assert action.type.contains(action.default), name  # the default is allowed


@pytest.mark.parametrize("argv", [
    ["score", "--run", "r", "--out", "o", "--threshold", "0", "--min-duration", "0",
     "--merge-gap", "1e6", "--window", "1", "--fps", "0", "--workers", "0"],
    ["score", "--run", "r", "--out", "o", "--threshold", "1", "--fps", "0.01"],
    ["extract", "footage", "v", "--out", "o", "--weights", "random", "--seed", "4294967295",
     "--batch-size", "0", "--shard-size", "1", "--chunk-clips", "1"],
    ["train", "--lr", "1", "--iterations", "1e5", "--dropout", "0", "--seed", "0"],
])
def test_the_ends_of_a_range_are_accepted(argv: list[str]) -> None:
    build_parser().parse_args(argv)


def test_train_options_are_typed_by_the_parser() -> None:
    args = build_parser().parse_args(["train", "--iterations", "1e5", "--rbs", "off", "--lr", "3e-4",
                                      "--model", "mil"])
    assert (args.cfg_iterations, args.cfg_rbs, args.cfg_lr, args.cfg_model) == (100_000, False,
                                                                               3e-4, "mil")

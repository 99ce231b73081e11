"""Training config: presets, YAML, overrides, and the errors for unknown keys and wrong types."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from claws.pipeline.training.config import (
    PRESETS, RANGES, TrainConfig, field_types, load_config, parse_value, save_yaml,
)


def test_defaults_are_the_paper_settings() -> None:
    c = TrainConfig()
    assert (c.iterations, c.lr, c.lr_decay_step, c.lr_decay_factor, c.optimizer) == (100_000, 1e-4, 80_000, 0.1, "rmsprop")
    assert (c.window, c.lambda1, c.lambda2, c.alpha, c.hidden1, c.hidden2, c.feature_dim) == (64, 0.9, 8e-5, 1.0, 512, 32, 2048)
    assert load_config("claws") == c


def test_table3_presets() -> None:
    assert load_config("bbn").rbs is False and load_config("bbn").clustering is False
    assert load_config("bbn+rbs+nsm1").nsm1 and not load_config("bbn+rbs+nsm1").nsm2
    top_down = load_config("claws-nsm1")
    assert not top_down.nsm1 and top_down.nsm2 and top_down.clustering and top_down.rbs
    assert load_config("mil").model == "mil"
    table3 = [p for p in PRESETS if p not in ("mil", "claws-literal")]
    assert len(table3) == 11  # the 5 + 6 rows of Table 3
    assert all(load_config(p).cluster_loss == "scale_free" for p in table3)
    literal = load_config("claws-literal")
    assert (literal.cluster_loss, literal.cluster_min_distance) == ("literal", 1e-6)


def test_yaml_and_overrides_precedence(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.001\nwindow: 32\nrbs: false\n")
    c = load_config("bbn+rbs", path, {"window": 16})
    assert (c.lr, c.window, c.rbs) == (0.001, 16, False)
    save_yaml(c, tmp_path / "saved.yaml")
    assert load_config(yaml_path=tmp_path / "saved.yaml") == c


@pytest.mark.parametrize(
    "text,match",
    [("lerning_rate: 0.1\n", "unknown config key 'lerning_rate'"),
     ("window: 3.5\n", "window must be int"),
     ("rbs: 1\n", "rbs must be bool"),
     ("model: svm\n", "model must be one of"),
     ("- 1\n", "expected a mapping"),
     ("val_fraction: 1.0\n", "val_fraction must be a number in"),
     # issue 20 item 6: the ranges of `--key value` apply to YAML files too
     ("lr: .nan\n", r"bad.yaml: lr must be a number in \(0, 1\], got nan"),
     ("lr: 1.0e+30\n", r"bad.yaml: lr must be a number in \(0, 1\], got 1e\+30"),
     ("lambda2: .inf\n", "bad.yaml: lambda2 must be a number in"),
     ("seed: -1\n", r"bad.yaml: seed must be a whole number in \[0, 4294967295\], got -1"),
     ("seed: 99999999999999999999\n", "bad.yaml: seed must be a whole number in"),
     ("iterations: 0\n", "bad.yaml: iterations must be a whole number in"),
     ("window: -3\n", "bad.yaml: window must be a whole number in"),
     ("dropout: 1\n", "bad.yaml: dropout must be a number in")],
)
def test_yaml_errors(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_config(yaml_path=path)


def test_parse_value() -> None:
    assert parse_value("iterations", "1e5") == 100_000
    assert parse_value("rbs", "false") is False and parse_value("nsm1", "yes") is True
    assert parse_value("lr", "3e-4") == 3e-4
    assert parse_value("optimizer", "adagrad") == "adagrad"
    with pytest.raises(ValueError, match="--window: expected a whole number in"):
        parse_value("window", "big")
    with pytest.raises(ValueError, match=r"--lr: expected a number in \(0, 1\], got 'inf'"):
        parse_value("lr", "inf")
    with pytest.raises(ValueError, match="expected true or false"):
        parse_value("rbs", "maybe")
    with pytest.raises(ValueError, match="unknown preset"):
        load_config("claws+magic")


def test_save_yaml_that_fails_midway_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    save_yaml(TrainConfig(), path)
    before = path.read_text()

    def fsync(fd):  # the bytes are in the temporary file, the disk refuses to keep them
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output error"):
        save_yaml(load_config("mil"), path)
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_every_number_has_a_range_that_the_defaults_and_presets_keep() -> None:
    numeric = {k for k, kind in field_types().items() if kind in (int, float)}
    assert set(RANGES) == numeric
    for config in (TrainConfig(), *(load_config(p) for p in PRESETS)):
        for key, allowed in RANGES.items():
            assert allowed.kind is field_types()[key] and allowed.contains(getattr(config, key)), key


def test_overrides_are_range_checked_like_yaml() -> None:
    with pytest.raises(ValueError, match=r"override: lr must be a number in \(0, 1\], got inf"):
        load_config(overrides={"lr": float("inf")})
    assert load_config(overrides={"lr": 1, "seed": 2**32 - 1}).lr == 1.0


def test_a_yaml_config_with_a_byte_order_mark_and_utf8_comments(tmp_path, with_bom):
    """Issue 20 item 8: read as UTF-8 (BOM or not), never in the locale's encoding."""
    path = with_bom(tmp_path / "c.yaml", "# fenêtre réduite\nwindow: 32\n")
    assert load_config(yaml_path=path).window == 32

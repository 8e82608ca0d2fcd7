"""The CLI generated from config dataclasses: every field an option, typed, unset unless given."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest
import typer
from typer.testing import CliRunner

from relevance.cli.options import Extra, command_line, config_command, config_fields, config_paths


@dataclass
class Demo:
    name: str = field(default="x", metadata={"help": "a name"})
    count: int = field(default=3, metadata={"help": "how many"})
    rate: float = field(default=0.5, metadata={"help": "a rate"})
    fields: tuple[str, ...] = field(default=("title",), metadata={"help": "fields, in order"})
    symmetric: bool = field(default=True, metadata={"help": "both ways"})
    hidden: str = field(default="", metadata={"help": "not exposed"})


def _app(seen: list, **kwargs) -> typer.Typer:
    app = typer.Typer()

    def run(given, extras):
        """Demo command."""
        seen.append((given, {k: v for k, v in extras.items() if k != "ctx"},
                     command_line(extras["ctx"]) if "ctx" in extras else None))

    app.command("demo")(config_command(Demo, run, **kwargs))
    app.command("other")(lambda: None)  # a second command keeps "demo" a subcommand
    return app


def test_every_field_is_an_option_with_help_and_default_shown():
    app = _app([], exclude=("hidden",))
    out = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"}).output
    for flag in ("--name", "--count", "--rate", "--fields", "--symmetric", "--no-symmetric"):
        assert flag in out
    assert "--hidden" not in out
    assert "how many (default: 3)" in out and "fields, in order (default: title)" in out


def test_only_given_options_are_passed_typed():
    seen: list = []
    app = _app(seen)
    assert CliRunner().invoke(app, ["demo"]).exit_code == 0
    assert seen[-1][0] == {}  # unset: the config's own defaults apply
    result = CliRunner().invoke(app, ["demo", "--count", "7", "--rate", "1e-3", "--fields", "title, brand",
                                      "--no-symmetric"])
    assert result.exit_code == 0, result.output
    given = seen[-1][0]
    assert given == {"count": 7, "rate": 1e-3, "fields": ("title", "brand"), "symmetric": False}
    assert Demo(**given).count == 7
    assert CliRunner().invoke(app, ["demo", "--count", "many"]).exit_code != 0
    assert CliRunner().invoke(app, ["demo", "--no-such", "1"]).exit_code != 0


def test_extras_arguments_and_the_recorded_command_line():
    seen: list = []
    app = _app(seen, context=True, extras=(
        Extra("path", str, dataclasses.MISSING, "a positional path", argument=True),
        Extra("seeds", str, "13", "comma-separated seeds")))
    result = CliRunner().invoke(app, ["demo", "runs/x", "--seeds", "1,2", "--count", "2", "--no-symmetric"])
    assert result.exit_code == 0, result.output
    given, extras, line = seen[-1]
    assert extras == {"path": "runs/x", "seeds": "1,2"} and given == {"count": 2, "symmetric": False}
    # the command that reproduces the run: explicit --no-flags kept, unset options left out
    assert line.split()[:2] == ["relevance", "demo"] and "runs/x" in line
    assert "--seeds 1,2" in line and "--count 2" in line and "--no-symmetric" in line and "--rate" not in line
    assert CliRunner().invoke(app, ["demo"]).exit_code != 0  # the argument is required


def test_config_fields_resolve_string_annotations():
    kinds = {f.name: kind for f, kind in config_fields(Demo)}
    assert kinds == {"name": str, "count": int, "rate": float, "fields": tuple, "symmetric": bool, "hidden": str}
    assert {f.name: kind for f, kind in config_fields(Outer)} == {"name": str, "lora": Inner, "sampling": Sampling}


def test_the_real_commands_expose_every_config_field():
    """What issue 17 found: hand-mapped options that left config fields unsettable."""
    from relevance.cli import app
    from training.config import CRSDConfig, StudentTrainConfig

    runner = CliRunner()
    train = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "250"}).output
    for f in dataclasses.fields(StudentTrainConfig):
        assert "--" + f.name.replace("_", "-") in train, f.name
    distill = runner.invoke(app, ["distill", "--help"], env={"COLUMNS": "250"}).output
    for f in dataclasses.fields(CRSDConfig):
        if f.name != "preset":
            assert "--" + f.name.replace("_", "-") in distill, f.name


@dataclass
class Repeated:
    tags: list[str] = field(default_factory=list, metadata={"help": "a tag", "metavar": "NAME=VALUE"})
    fields: tuple[str, ...] = field(default=("title",), metadata={"help": "fields, in order"})


def test_list_fields_are_repeatable_options_whose_items_keep_their_commas():
    seen: list = []
    app = typer.Typer()

    def run(given, extras):
        seen.append((given, command_line(extras["ctx"])))

    app.command("demo")(config_command(Repeated, run, context=True))
    app.command("other")(lambda: None)
    runner = CliRunner()
    out = runner.invoke(app, ["demo", "--help"], env={"COLUMNS": "200"}).output
    assert "NAME=VALUE" in out and "a tag (default" not in out  # an empty list shows no default
    assert runner.invoke(app, ["demo"]).exit_code == 0 and seen[-1][0] == {}
    result = runner.invoke(app, ["demo", "--tags", "a=[1,2]", "--fields", "title,brand", "--tags", "b=2"])
    assert result.exit_code == 0, result.output
    given, line = seen[-1]
    assert given == {"tags": ["a=[1,2]", "b=2"], "fields": ("title", "brand")}
    assert line == "relevance demo --tags 'a=[1,2]' --tags b=2 --fields title,brand"  # reruns the same
    assert {f.name: kind for f, kind in config_fields(Repeated)} == {"tags": list, "fields": tuple}


@dataclass
class Inner:
    r: int = field(default=16, metadata={"help": "a rank"})
    scale: float = field(default=1.0, metadata={"help": "a scale"})
    on: bool = field(default=True, metadata={"help": "switched on"})


@dataclass
class Decoding:
    max_new_tokens: int = field(default=72, metadata={"help": "tokens per output"})
    retries: int = field(default=4, metadata={"help": "server retries", "cli_name": "max_server_retries"})


@dataclass
class Sampling:
    split: str = field(default="train", metadata={"help": "split to sample"})
    decoding: Decoding = field(default_factory=Decoding, metadata={"help": "decoding", "cli_prefix": ""})
    max_chars: int = field(default=400, metadata={"help": "longest chain"})


@dataclass
class Outer:
    name: str = field(default="x", metadata={"help": "a name"})
    lora: Inner = field(default_factory=lambda: Inner(r=8), metadata={"help": "adapter settings"})
    sampling: Sampling = field(default_factory=Sampling, metadata={"help": "sampling", "cli_prefix": ""})


def _nested_app(seen: list, **kwargs) -> typer.Typer:
    app = typer.Typer()

    def run(given, extras):
        seen.append((given, command_line(extras["ctx"])))

    app.command("demo")(config_command(Outer, run, context=True, **kwargs))
    app.command("other")(lambda: None)
    return app


def test_nested_dataclass_fields_are_flattened_with_a_prefix():
    runner = CliRunner()
    out = runner.invoke(_nested_app([]), ["demo", "--help"], env={"COLUMNS": "200"}).output
    for flag in ("--name", "--lora-r", "--lora-scale", "--lora-on", "--no-lora-on",  # prefix "<field>_"
                 "--split", "--max-new-tokens", "--max-chars",  # cli_prefix "": the inner names, two levels down
                 "--max-server-retries"):  # cli_name renames the option
        assert flag in out, flag
    assert "--lora " not in out and "--sampling" not in out and "--decoding" not in out and "--retries" not in out
    assert "a rank (default: 8)" in out  # the outer default_factory's value, not the inner class's 16
    assert "tokens per output (default: 72)" in out
    assert "Adapter settings" in out and "Sampling" in out  # a heading per nested field


def test_nested_options_are_given_back_nested_and_unset_unless_given():
    seen: list = []
    app = _nested_app(seen)
    runner = CliRunner()
    assert runner.invoke(app, ["demo"]).exit_code == 0 and seen[-1][0] == {}
    result = runner.invoke(app, ["demo", "--lora-r", "4", "--no-lora-on", "--split", "dev", "--max-new-tokens", "9",
                                 "--max-server-retries", "0"])
    assert result.exit_code == 0, result.output
    given, line = seen[-1]
    assert given == {"lora": {"r": 4, "on": False},
                     "sampling": {"split": "dev", "decoding": {"max_new_tokens": 9, "retries": 0}}}
    assert "--lora-r 4" in line and "--no-lora-on" in line and "--max-server-retries 0" in line
    assert "--lora-scale" not in line and "--name" not in line


def test_nested_fields_are_excluded_by_path():
    seen: list = []
    app = _nested_app(seen, exclude=("lora.scale", "sampling.decoding", "sampling.max_chars"))
    out = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"}).output
    assert "--lora-r" in out and "--split" in out
    for flag in ("--lora-scale", "--max-new-tokens", "--max-server-retries", "--max-chars"):
        assert flag not in out, flag
    assert config_paths(Outer) == ["name", "lora.r", "lora.scale", "lora.on", "sampling.split",
                                   "sampling.decoding.max_new_tokens", "sampling.decoding.retries", "sampling.max_chars"]
    with pytest.raises(ValueError, match="no field"):
        config_command(Outer, lambda given, extras: None, exclude=("lora.rank",))


@dataclass
class Clash:
    split: str = field(default="test", metadata={"help": "split"})
    sampling: Sampling = field(default_factory=Sampling, metadata={"cli_prefix": ""})


def test_two_fields_with_one_option_name_are_an_error():
    with pytest.raises(ValueError, match="--split"):
        config_command(Clash, lambda given, extras: None)
    config_command(Clash, lambda given, extras: None, exclude=("sampling.split",))  # resolved by excluding one
    with pytest.raises(ValueError, match="extra"):
        config_command(Demo, lambda given, extras: None, extras=(Extra("count", int, 1, "clashes"),))

"""``relevance loadtest``: every tool a command whose options are its config's fields; ``python -m loadtest.TOOL``
(the form older reports recorded) runs the same command; a config's refusals are usage errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loadtest.config import BenchConfig, LoadRunConfig, OverloadConfig, QueueingConfig, RawConfig
from relevance.cli import app
from tests.loadtest.commands import relevance_loadtest

ROOT = Path(__file__).parents[2]
TOOLS = {"bench": BenchConfig, "overload": OverloadConfig, "raw": RawConfig, "run": LoadRunConfig,
         "queueing": QueueingConfig}


def test_every_tool_is_a_command_with_every_field_of_its_config():
    runner = CliRunner()
    listing = runner.invoke(app, ["loadtest", "--help"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0, listing.output
    for tool, config in TOOLS.items():
        assert f" {tool} " in listing.output
        out = runner.invoke(app, ["loadtest", tool, "--help"], env={"COLUMNS": "250"}).output
        for f in dataclasses.fields(config):
            assert "--" + f.name.replace("_", "-") in out, (tool, f.name)


def test_python_m_runs_the_same_command(capsys):
    args = ["--raw-pairs-s", "800", "--pairs", "32", "--p99-ms", "100"]
    assert relevance_loadtest("queueing", args) == 0
    expected = capsys.readouterr().out
    done = subprocess.run([sys.executable, "-m", "loadtest.queueing", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == expected
    refused = subprocess.run([sys.executable, "-m", "loadtest.queueing", "--pairs", "32"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 2 and "one of --service-ms and --raw-pairs-s is required" in refused.stderr


@pytest.mark.parametrize("tool, args, message", [
    ("queueing", ["--service-ms", "20", "--raw-pairs-s", "800"], "not both"),
    ("bench", ["--skip-raw"], "--skip-raw needs --rates"),
    ("bench", ["--arrivals", "bursty"], "expected poisson or uniform"),
    ("bench", ["--set", "max_batch_pairs"], "expected NAME=VALUE"),
    ("overload", ["--multiples", "0,1"], "expected positive numbers"),
    ("overload", ["--services", "1:x"], "expected N or N:WEIGHT"),
])  # fmt: skip
def test_settings_a_config_refuses_are_usage_errors(tool, args, message, capsys):
    assert relevance_loadtest(tool, args) == 2
    assert message in capsys.readouterr().err


def test_set_is_repeatable_and_its_values_keep_their_commas():
    cfg = OverloadConfig(set=["ab_buckets={\"a\": 1, \"b\": 2}", "CACHE_ENABLED=false"])
    assert cfg.settings == {"ab_buckets": '{"a": 1, "b": 2}', "cache_enabled": "false"}
    assert cfg.multiples == (0.25, 0.5, 1.0, 2.0, 5.0) and cfg.services_override is None
    assert OverloadConfig(services="8:1,32:2").services_override == {8: 1.0, 32: 2.0}

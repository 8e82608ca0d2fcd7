"""The teacher's commands, options generated from the step configs: what each option sets (no model runs)."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from relevance.cli import app
from teacher.backends.http import HttpBackendConfig
from teacher.steps.annotate import AnnotateConfig, AnnotateSummary
from teacher.steps.dpo import TeacherDPOConfig
from teacher.steps.reward_sampling import RewardSampleConfig

COMMANDS = ["convert", "dapt", "perplexity", "bootstrap", "sft", "reward", "dpo", "calibrate", "eval", "oracle"]


@pytest.fixture
def seen(monkeypatch):
    """The configs the commands hand to their steps (the steps themselves do not run)."""
    import relevance.cli.teacher as cli
    import teacher.steps.annotate
    import teacher.steps.dpo
    import teacher.steps.evaluate
    import teacher.steps.sft

    calls: list = []

    def step(*args):
        calls.append(args)
        return "folder"

    monkeypatch.setattr(cli, "_done", lambda folder: None)
    monkeypatch.setattr(cli, "_logging", lambda: None)
    monkeypatch.setattr(teacher.steps.sft, "train_sft", step)
    monkeypatch.setattr(teacher.steps.dpo, "train_dpo", step)
    monkeypatch.setattr(teacher.steps.evaluate, "evaluate_teacher",
                        lambda cfg: step(cfg) and {"teacher": {"name": "n", "version": "v"}})
    monkeypatch.setattr(teacher.steps.evaluate, "format_teacher_report", lambda result, title: title)
    monkeypatch.setattr(teacher.steps.annotate, "annotate", lambda cfg, backend: (
        step(cfg, backend), AnnotateSummary(total=0, skipped=0, ok=0, failed=0, seconds=1.0))[1])
    return calls


def _run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    out = CliRunner().invoke(app, ["teacher", command, "--help"], env={"COLUMNS": "250"}).output
    assert "--help" in out and "Usage" in out


def test_the_option_names_users_know_survive():
    runner = CliRunner()
    helps = {c: runner.invoke(app, ["teacher", c, "--help"], env={"COLUMNS": "250"}).output for c in COMMANDS}
    helps["annotate"] = runner.invoke(app, ["annotate", "--help"], env={"COLUMNS": "250"}).output
    for command in ("dapt", "sft", "dpo"):
        assert all(f in helps[command] for f in ("--lora-r", "--lora-alpha", "--lora-dropout", "--batch-size"))
    for command in ("bootstrap", "reward", "dpo", "eval", "calibrate", "annotate"):
        assert all(f in helps[command] for f in ("--max-new-tokens", "--temperature", "--dtype", "--text-fields"))
    for command in ("reward", "dpo", "eval"):
        assert "--label-scoring" in helps[command]
    for command in ("bootstrap", "eval", "annotate"):
        assert "--prompt-version" in helps[command]
    for flag in ("--backend", "--base-url", "--model", "--concurrency", "--timeout-s", "--max-http-retries",
                 "--rate-limit-rps"):
        assert flag in helps["annotate"], flag
    assert "--max-tokens" not in helps["annotate"]  # the HTTP backend's max_tokens is --max-new-tokens
    # DPO's nested sampling config: only what the command always exposed of it
    assert "--max-chars" not in helps["dpo"] and "--top-p" not in helps["dpo"] and "--shots" not in helps["dpo"]


def test_sft_nested_lora_options(seen):
    _run("teacher", "sft", "--lora-r", "4", "--lora-alpha", "8", "--n-examples", "10", "--no-class-balance")
    (cfg,) = seen[-1]
    assert cfg.lora.r == 4 and cfg.lora.alpha == 8 and cfg.lora.dropout == 0.05  # the rest keep their defaults
    assert cfg.n_examples == 10 and cfg.class_balance is False and cfg.lr == 2e-4


def test_dpo_sampling_settings_and_what_it_shares_with_dpo(seen):
    _run("teacher", "dpo", "--out", "runs/x", "--batch-size", "4", "--n-pairs", "12", "--samples-per-pair", "2",
         "--label-scoring", "ordinal", "--max-new-tokens", "64", "--temperature", "1.1", "--dtype", "float32",
         "--text-fields", "title,brand", "--seed", "7", "--threads", "1", "--teacher", "t", "--lr", "1e-3")
    (cfg,) = seen[-1]
    assert isinstance(cfg, TeacherDPOConfig) and cfg.batch_size == 4 and cfg.lr == 1e-3
    s = cfg.sampling
    assert (s.n_pairs, s.samples_per_pair, s.weights.label_scoring, s.dtype) == (12, 2, "ordinal", "float32")
    assert (s.generation.max_new_tokens, s.generation.temperature, s.generation.batch_size) == (64, 1.1, 4)
    assert (s.teacher, s.text_fields, s.seed, s.threads, s.out) == ("t", ("title", "brand"), 7, 1, "runs/x/samples.jsonl")
    assert CliRunner().invoke(app, ["teacher", "dpo", "--max-chars", "10"]).exit_code != 0  # not exposed


def test_dpo_defaults_are_the_configs(seen):
    _run("teacher", "dpo")
    (cfg,) = seen[-1]
    default = TeacherDPOConfig()
    expected = dataclasses.replace(default.sampling, out="runs/teacher/dpo/samples.jsonl")
    assert cfg.sampling == expected and dataclasses.replace(cfg, sampling=default.sampling) == default


def test_eval_reward_weights(seen):
    assert "n v on test" in _run("teacher", "eval", "--label-scoring", "ordinal", "--label-weight", "1",
                                 "--format-weight", "0").output
    (cfg,) = seen[-1]
    assert cfg.weights.label_scoring == "ordinal" and cfg.weights.label == 1.0 and cfg.weights.format == 0.0
    assert cfg.weights.consistency == 0.2


def test_annotate_local_by_default(seen):
    _run("annotate", "--limit", "3")
    cfg, backend = seen[-1]
    assert backend is None and cfg.backend == "local"
    step_settings = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(AnnotateConfig)}
    assert AnnotateConfig(**step_settings) == AnnotateConfig(limit=3)  # every other setting is the config's default


def test_annotate_http_options(seen):
    _run("annotate", "--backend", "http", "--base-url", "http://h:1/v1", "--model", "m", "--concurrency", "3",
         "--timeout-s", "5", "--max-http-retries", "1", "--rate-limit-rps", "2.5", "--teacher-version", "v9",
         "--max-new-tokens", "40", "--temperature", "0.5")
    cfg, backend = seen[-1]
    assert backend.cfg == HttpBackendConfig(base_url="http://h:1/v1", model="m", concurrency=3, timeout_s=5.0,
                                            max_retries=1, rate_limit_rps=2.5, version="v9", max_tokens=40,
                                            temperature=0.5)
    assert backend.name == "m" and backend.version == "v9"
    bad = CliRunner().invoke(app, ["annotate", "--backend", "grpc"])
    assert bad.exit_code != 0 and "local, http or bundle" in bad.output


def test_reward_config_from_options():
    """The nested dicts the generator hands over build the same config as the dataclasses do."""
    cfg = RewardSampleConfig(**{"generation": {"batch_size": 3}, "weights": {"label_scoring": "ordinal"}})
    assert cfg.generation.batch_size == 3 and cfg.generation.max_new_tokens == 72
    assert cfg.weights.label_scoring == "ordinal" and cfg.weights.label == 0.5

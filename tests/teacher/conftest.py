"""Fixtures of the teacher suite: a tiny causal LM and teachers trained from it by the real steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.teacher.tiny_lm import make_tiny_causal_lm

TEXT_FIELDS = ("title", "brand")


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def dapt_teacher(tmp_path_factory, tiny_lm, catalog_jsonl) -> Path:
    from teacher.settings import LoraSettings
    from teacher.steps.dapt import DaptConfig, train_dapt

    cfg = DaptConfig(teacher=str(tiny_lm), data=str(catalog_jsonl), out=str(tmp_path_factory.mktemp("dapt")),
                     splits=("train",), text_fields=TEXT_FIELDS, max_tokens=4000, block_size=64, batch_size=8,
                     max_steps=6, lr=5e-3, lora=LoraSettings(r=4, alpha=8), logging_steps=1, threads=1)
    return train_dapt(cfg)


@pytest.fixture(scope="session")
def sft_teacher(tmp_path_factory, dapt_teacher, catalog_jsonl) -> Path:
    """DAPT -> SFT on program seed chains: enough steps for the tiny model to pick up the chain format."""
    from teacher.settings import LoraSettings
    from teacher.steps.sft import TeacherSFTConfig, train_sft

    cfg = TeacherSFTConfig(teacher=str(dapt_teacher), data=str(catalog_jsonl), out=str(tmp_path_factory.mktemp("sft")),
                           split="train", text_fields=TEXT_FIELDS, n_examples=240, batch_size=8, max_steps=60,
                           lr=1e-2, warmup_ratio=0.0, lora=LoraSettings(r=16, alpha=32, dropout=0.0),
                           logging_steps=5, max_length=320, threads=1)
    return train_sft(cfg)

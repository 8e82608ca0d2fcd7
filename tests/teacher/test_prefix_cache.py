"""The shared-prefix key/value cache: the same greedy outputs and label probabilities as without it."""

from __future__ import annotations

import pytest

from relevance.data import load_pairs
from tests.teacher.conftest import TEXT_FIELDS


def _backend(teacher, template, prefix_cache: bool):
    from teacher.backends.local import LocalBackend
    from teacher.settings import GenerationSettings

    settings = GenerationSettings(max_new_tokens=24, batch_size=4, prefix_cache=prefix_cache)
    return LocalBackend.from_teacher(str(teacher), template, settings, threads=1)


def test_cached_prefix_changes_nothing_but_the_work(sft_teacher, catalog_jsonl):
    from teacher.chains.prompts import PromptTemplate, few_shot_examples

    pairs = load_pairs(catalog_jsonl, "train")
    shots = few_shot_examples(pairs, 3, seed=2, text_fields=TEXT_FIELDS)
    template = PromptTemplate(text_fields=TEXT_FIELDS, shots=shots)
    batch = load_pairs(catalog_jsonl, "test")[:6]
    cached, plain = _backend(sft_teacher, template, True), _backend(sft_teacher, template, False)

    encoded, cache = cached._encode(cached.prompts(batch[:4]), 1)
    assert cache is not None  # the few-shot prefix is long enough to be shared
    prompt_ids = [cached.tokenizer(p, add_special_tokens=False)["input_ids"] for p in cached.prompts(batch[:4])]
    for row, mask, ids in zip(encoded["input_ids"].tolist(), encoded["attention_mask"].tolist(), prompt_ids):
        assert [t for t, m in zip(row, mask) if m] == ids  # each row sees exactly its own prompt

    with_cache, without = cached.complete(batch), plain.complete(batch)
    for (a,), (b,) in zip(with_cache, without):
        assert a.text == b.text
        if b.probs is not None:
            assert a.probs == pytest.approx(b.probs, abs=1e-4)


def test_no_cache_without_a_shared_prefix_or_for_several_samples(sft_teacher, catalog_jsonl):
    from teacher.chains.prompts import PromptTemplate

    backend = _backend(sft_teacher, PromptTemplate(text_fields=TEXT_FIELDS), True)
    prompts = backend.prompts(load_pairs(catalog_jsonl, "test")[:2])
    assert backend._encode(prompts, n=3)[1] is None  # several samples per prompt: generate expands the batch

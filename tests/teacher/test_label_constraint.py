"""Grammar-constrained decoding of the label line: after ``Label:`` only a label word, then only EOS."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tokenizer(tiny_lm):
    from training.teacher.model import load_tokenizer

    return load_tokenizer(tiny_lm)


def _constraint(tokenizer, prompt_length: int):
    from training.teacher.generation import LabelConstraint, LabelTokens

    return LabelConstraint(tokenizer, LabelTokens(tokenizer), [tokenizer.eos_token_id], prompt_length)


def _allowed(constraint, ids: list[int], vocab: int) -> set[int]:
    scores = constraint(torch.tensor([ids]), torch.zeros(1, vocab))
    return {i for i in range(vocab) if scores[0, i] > float("-inf")}


def test_after_label_prefix_only_label_words_then_only_eos(tokenizer):
    from training.teacher.generation import LabelTokens

    prompt = tokenizer.encode("Search: drill\nProduct: drill", add_special_tokens=False)
    chain = tokenizer.encode("Type: same\nAccessory: no\nLabel:", add_special_tokens=False)
    c = _constraint(tokenizer, len(prompt))
    assert c.prefix, "the tiny tokenizer writes 'Label:' as its own tokens after a newline"
    vocab = len(tokenizer)
    labels = set(LabelTokens(tokenizer).variants[0].values())
    assert _allowed(c, prompt + chain, vocab) == labels
    exact = LabelTokens(tokenizer).variants[0]["exact"]
    assert _allowed(c, prompt + chain + [exact], vocab) == {tokenizer.eos_token_id}
    # elsewhere nothing is masked, and a 'Label:' inside the prompt does not count
    assert len(_allowed(c, prompt + chain[:-2], vocab)) == vocab
    c_all_prompt = _constraint(tokenizer, len(prompt) + len(chain))
    assert len(_allowed(c_all_prompt, prompt + chain, vocab)) == vocab


def test_constrained_generation_always_ends_with_a_parsable_label(sft_teacher, catalog_jsonl):
    from relevance.data import load_pairs
    from training.teacher.config import GenerationSettings
    from training.teacher.generation import LocalBackend
    from training.teacher.prompts import PromptTemplate, parse_output
    from tests.teacher.conftest import TEXT_FIELDS

    pairs = load_pairs(catalog_jsonl, "test")[:12]
    backend = LocalBackend.from_teacher(str(sft_teacher), PromptTemplate(text_fields=TEXT_FIELDS),
                                        GenerationSettings(max_new_tokens=96, batch_size=4))
    reached = 0
    for (completion,) in backend.complete(pairs):
        parsed = parse_output(completion.text)
        if "Label:" in completion.text:  # reached the label line: the label is valid and nothing follows
            reached += 1
            assert parsed.ok and completion.text.rstrip().splitlines()[-1].startswith("Label:"), completion.text
            assert completion.probs is not None and abs(sum(completion.probs.values()) - 1) < 1e-5
    assert reached >= len(pairs) // 2, f"only {reached} of {len(pairs)} outputs reached the label line"

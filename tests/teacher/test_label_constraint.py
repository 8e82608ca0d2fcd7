"""Grammar-constrained decoding of the label line: after ``Label:`` only a label word, then only EOS."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tokenizer(tiny_lm):
    from teacher.model import load_tokenizer

    return load_tokenizer(tiny_lm)


def _constraint(tokenizer, prompt_length: int):
    from teacher.backends.local import LabelConstraint, LabelTokens

    return LabelConstraint(tokenizer, LabelTokens(tokenizer), [tokenizer.eos_token_id], prompt_length)


def _allowed(constraint, ids: list[int], vocab: int) -> set[int]:
    scores = constraint(torch.tensor([ids]), torch.zeros(1, vocab))
    return {i for i in range(vocab) if scores[0, i] > float("-inf")}


def test_after_label_prefix_only_label_words_then_only_eos(tokenizer):
    from teacher.backends.local import LabelTokens

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
    from teacher.backends.local import LocalBackend
    from teacher.chains.prompts import PromptTemplate, parse_output
    from teacher.settings import GenerationSettings
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
    # Not vacuous: some outputs must reach the label line. How many depends on how far 60 tiny SFT steps
    # get on the machine's float kernels (6+ of 12 on AMD EPYC, 5 on Xeon with AMX: the others stop
    # early with EOS, which the constraint leaves to the parser and the retry logic).
    assert reached >= len(pairs) // 4, f"only {reached} of {len(pairs)} outputs reached the label line"


def test_fit_label_bias_undoes_a_skewed_prior():
    import numpy as np

    from teacher.steps.calibrate import fit_label_bias, macro_f1

    rng = np.random.default_rng(0)
    labels = rng.choice(["irrelevant", "partial", "exact"], size=300, p=[0.2, 0.4, 0.4])
    signal = np.eye(3)[[("irrelevant", "partial", "exact").index(lbl) for lbl in labels]]
    logits = 1.5 * signal + rng.normal(0, 0.5, (300, 3)) + np.array([0.0, 0.0, 2.0])  # a strong 'exact' prior
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    truth = np.array([("irrelevant", "partial", "exact").index(lbl) for lbl in labels])
    bias = fit_label_bias(probs, list(labels), span=4.0, step=0.25)
    assert bias["exact"] == 0.0 and bias["irrelevant"] > 1.0 and bias["partial"] > 1.0
    shifted = (np.log(probs) + np.array([bias[k] for k in ("irrelevant", "partial", "exact")])).argmax(1)
    assert macro_f1(shifted, truth) > macro_f1(probs.argmax(1), truth) + 0.2
    assert macro_f1(truth, truth) == 1.0


def test_label_bias_shifts_the_constrained_label_and_its_probability(tokenizer):
    from teacher.backends.local import LabelConstraint, LabelTokens

    tokens = LabelTokens(tokenizer)
    prompt = tokenizer.encode("Search: drill", add_special_tokens=False)
    chain = tokenizer.encode("Accessory: no\nLabel:", add_special_tokens=False)
    scores = torch.zeros(1, len(tokenizer))
    ids = tokens.variants[0]
    scores[0, ids["exact"]] = 2.0
    plain = LabelConstraint(tokenizer, tokens, [tokenizer.eos_token_id], len(prompt))
    biased = LabelConstraint(tokenizer, tokens, [tokenizer.eos_token_id], len(prompt), {"partial": 3.0})
    seq = torch.tensor([prompt + chain])
    assert int(plain(seq, scores.clone()).argmax()) == ids["exact"]
    raw = scores.clone()
    assert int(biased(seq, raw).argmax()) == ids["partial"]
    # generate() stores the tensor it passes in as the raw logits the probabilities are read from
    assert torch.equal(raw, scores), "the constraint must not change its input in place"


def test_calibrate_writes_a_spec_with_the_bias_that_the_backend_loads(sft_teacher, catalog_jsonl, tmp_path):
    import json

    from teacher.backends.local import LocalBackend
    from teacher.settings import GenerationSettings
    from teacher.steps.calibrate import CalibrateConfig, calibrate
    from tests.teacher.conftest import TEXT_FIELDS

    out = calibrate(CalibrateConfig(teacher=str(sft_teacher), data=str(catalog_jsonl), split="train", n_pairs=24,
                                    out=str(tmp_path / "cal"), text_fields=TEXT_FIELDS, step=0.5,
                                    generation=GenerationSettings(max_new_tokens=96, batch_size=8)))
    spec, run = json.loads((out / "teacher.json").read_text()), json.loads((out / "run.json").read_text())
    assert spec["steps"][-1] == "calibrate" and spec["label_bias"] == run["label_bias"]
    assert run["macro_f1_after"] >= run["macro_f1_before"]
    backend = LocalBackend.from_teacher(str(out))
    assert backend.label_bias == run["label_bias"]
    with pytest.raises(ValueError, match="already calibrated"):
        calibrate(CalibrateConfig(teacher=str(out), data=str(catalog_jsonl), split="train", out=str(tmp_path / "x")))
    with pytest.raises(ValueError, match="evaluation split"):
        CalibrateConfig(split="test")

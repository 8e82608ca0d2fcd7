"""The pair encoder: same ids as the HF tokenizer, truncation order, padding."""

from __future__ import annotations

import numpy as np
import pytest

from relevance.encoding import PairEncoder


@pytest.fixture(scope="module")
def encoder_and_hf(tiny_init):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(tiny_init)
    return PairEncoder.from_file(tiny_init / "tokenizer.json", max_length=16), hf


def test_matches_hf_pair_encoding(encoder_and_hf):
    encoder, hf = encoder_and_hf
    ids, types = encoder.encode(["cordless drill"], ["dewalt drill kit"])[0]
    ref = hf("cordless drill", "dewalt drill kit")
    assert ids == ref["input_ids"] and types == ref["token_type_ids"]


def test_truncation_cuts_service_before_query(encoder_and_hf):
    encoder, _ = encoder_and_hf
    query = "cordless steel drill"
    service = " ".join(["hammer"] * 40)
    ids, types = encoder.encode([query], [service])[0]
    assert len(ids) == 16
    q_ids = encoder.token_ids([query])[0]
    assert ids[1 : 1 + len(q_ids)] == q_ids  # query intact
    assert ids[-1] == encoder.sep_id and types.count(0) == len(q_ids) + 2


def test_reasoning_is_truncated_first_then_service(encoder_and_hf):
    encoder, _ = encoder_and_hf
    query, service, reasoning = "drill", "dewalt cordless drill kit", " ".join(["saw"] * 40)
    ids, types = encoder.encode([query], [service], [reasoning])[0]
    q_ids, s_ids = encoder.token_ids([query])[0], encoder.token_ids([service])[0]
    assert len(ids) == 16
    assert ids[: 2 + len(q_ids) + len(s_ids) + 1] == [encoder.cls_id, *q_ids, encoder.sep_id, *s_ids, encoder.sep_id]
    assert ids.count(encoder.sep_id) == 3


def test_pad_to_longest_in_batch(encoder_and_hf):
    encoder, _ = encoder_and_hf
    examples = encoder.encode(["drill", "hose"], ["saw", "garden hose with brass valve"])
    batch = encoder.pad(examples)
    width = max(len(e[0]) for e in examples)
    assert batch["input_ids"].shape == (2, width)
    assert batch["attention_mask"].sum(1).tolist() == [len(e[0]) for e in examples]
    assert np.all(batch["input_ids"][0, len(examples[0][0]):] == encoder.pad_id)

"""The result cache: repeated pairs skip inference, keys follow the tokenizer's normalisation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, normalizers

from service.cache import ScoreCache, make_normaliser
from tests.service.support import Backends, body, running, scrape


def test_lru_evicts_the_least_recently_used():
    cache = ScoreCache(2)
    cache.put(("m", "q", "a"), (1.0,))
    cache.put(("m", "q", "b"), (2.0,))
    assert cache.get(("m", "q", "a")) == (1.0,)  # a is now the most recent
    cache.put(("m", "q", "c"), (3.0,))
    assert cache.get(("m", "q", "b")) is None and len(cache) == 2


async def test_repeated_pairs_are_answered_from_the_cache(make_settings):
    backends = Backends()
    async with running(make_settings(), backends) as (_, client):
        first = await client.post("/relevance", json=body("cordless drill", n=4))
        runs = len(backends["control"].batch_sizes)
        again = await client.post("/relevance", json=body("  Cordless   DRILL ", n=4))  # same text to BERT
        partly = await client.post("/relevance", json=body("cordless drill", n=6))
        hits = await scrape(client, "relevance_cache_hits_total", variant="control")
        misses = await scrape(client, "relevance_cache_misses_total", variant="control")
    assert (first.json()["cached"], again.json()["cached"], partly.json()["cached"]) == (0, 4, 4)
    assert len(backends["control"].batch_sizes) == runs + 1  # only the 2 new pairs of `partly` ran
    assert again.json()["results"] == first.json()["results"]
    assert (hits, misses) == (8, 6)


async def test_cache_can_be_switched_off(make_settings):
    async with running(make_settings(cache_enabled=False)) as (_, client):
        await client.post("/relevance", json=body())
        again = await client.post("/relevance", json=body())
    assert again.json()["cached"] == 0


async def test_graphs_of_different_precision_never_share_entries(make_settings):
    settings = make_settings(precision="int8", shadow_precision="fp32")  # one bundle, two graphs
    async with running(settings) as (_, client):
        await client.post("/relevance", json=body())
        shadow = await client.post("/relevance/shadow", json=body())
        shadow_again = await client.post("/relevance/shadow", json=body())
    assert (shadow.json()["cached"], shadow_again.json()["cached"]) == (0, 4)


def _bert_tokenizer(**options) -> Tokenizer:
    tokenizer = Tokenizer.from_str(
        '{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null, '
        '"pre_tokenizer": null, "post_processor": null, "decoder": null, '
        '"model": {"type": "WordLevel", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}}'
    )
    tokenizer.normalizer = normalizers.BertNormalizer(**options)
    return tokenizer


# ASCII with its control characters over-represented (the fast path's edge), plus some non-ASCII text
_TEXT = st.text(st.one_of(st.characters(max_codepoint=0x7F), st.sampled_from("\t\n\r\x0b\x0c\x1c\x7f\x00 ")))
_ANY_TEXT = st.one_of(_TEXT, st.text(st.characters(max_codepoint=0x3000)))


@pytest.mark.parametrize("lowercase", [True, False])
@settings(max_examples=400, deadline=None)
@given(text=_ANY_TEXT)
def test_the_key_is_what_berts_normaliser_makes_of_the_text(lowercase, text):
    """The pure-Python ASCII path gives exactly the Rust normaliser's text (then spaces collapsed)."""
    tokenizer = _bert_tokenizer(lowercase=lowercase)
    expected = " ".join(tokenizer.normalizer.normalize_str(text).split())
    assert make_normaliser(tokenizer)(text) == expected


def test_other_normalisers_take_the_tokenizers_own_path():
    tokenizer = _bert_tokenizer()
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace("a", "b")])
    assert make_normaliser(tokenizer)("A  cat") == "A cbt"

"""A bounded LRU cache of class probabilities per (model, query, service text).

Ad traffic repeats popular (query, ad) pairs, so a hit skips tokenisation, queueing and inference.
The key holds the bundle checksum and precision (a new bundle never reads an old bundle's scores)
and the text *after* the tokenizer's own normalisation (case, accents, spacing), so two spellings
that the model cannot tell apart share one entry. Only the event loop touches it: no lock.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable

from tokenizers import Tokenizer

CacheKey = tuple[str, str, str]
Probs = tuple[float, ...]

# BERT's clean-up on ASCII: control characters are dropped, except the ones it reads as whitespace.
_ASCII_WHITESPACE = "\t\n\r"
_ASCII_CLEAN = str.maketrans(
    {chr(c): (" " if chr(c) in _ASCII_WHITESPACE else None) for c in [*range(0x20), 0x7F]}
)


def _bert_ascii_fast_path(tokenizer: Tokenizer) -> Callable[[str], str] | None:
    """BertNormalizer's effect on pure-ASCII text in plain Python, when the tokenizer's normaliser is
    exactly one BertNormalizer with clean_text on: on ASCII its accent stripping and CJK spacing do
    nothing, so it is clean-up plus (optionally) lower-casing. A cache lookup normalises every service
    text of a request on the event loop, and this is an order of magnitude cheaper than the Rust call per text."""
    spec = json.loads(tokenizer.to_str()).get("normalizer") or {}
    if spec.get("type") != "BertNormalizer" or not spec.get("clean_text", True):
        return None
    lowercase = bool(spec.get("lowercase", True))

    def normalise_ascii(text: str) -> str:
        if not text.isprintable():  # printable ASCII has no control characters: nothing to clean
            text = text.translate(_ASCII_CLEAN)
        return text.lower() if lowercase else text

    return normalise_ascii


def make_normaliser(tokenizer: Tokenizer) -> Callable[[str], str]:
    """Text -> what the model sees before word-piece splitting (BERT splits on any run of spaces)."""
    normalizer = tokenizer.normalizer
    ascii_path = _bert_ascii_fast_path(tokenizer) if normalizer is not None else None

    def normalise(text: str) -> str:
        if ascii_path is not None and text.isascii():
            text = ascii_path(text)
        elif normalizer is not None:
            text = normalizer.normalize_str(text)
        return " ".join(text.split())

    return normalise


class ScoreCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[CacheKey, Probs] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> Probs | None:
        probs = self._entries.get(key)
        if probs is not None:
            self._entries.move_to_end(key)
        return probs

    def put(self, key: CacheKey, probs: Probs) -> None:
        if self.capacity <= 0:
            return
        self._entries[key] = probs
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

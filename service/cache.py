"""A bounded LRU cache of class probabilities per (model, query, service text).

Ad traffic repeats popular (query, ad) pairs, so a hit skips tokenisation, queueing and inference.
The key holds the bundle checksum and precision (a new bundle never reads an old bundle's scores)
and the text *after* the tokenizer's own normalisation (case, accents, spacing), so two spellings
that the model cannot tell apart share one entry. Only the event loop touches it: no lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from tokenizers import Tokenizer

CacheKey = tuple[str, str, str]
Probs = tuple[float, ...]


def make_normaliser(tokenizer: Tokenizer) -> Callable[[str], str]:
    """Text -> what the model sees before word-piece splitting (BERT splits on any run of spaces)."""
    normalizer = tokenizer.normalizer

    def normalise(text: str) -> str:
        if normalizer is not None:
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

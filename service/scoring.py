"""Score one request on one variant: cache, admission, tokenisation, batcher, results.

The engine (for the routes) and the shadow mirror both go through :class:`Scorer`, so mirrored
traffic is scored exactly like primary traffic, only on another variant with its own queue.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.batcher import Example
from service.cache import CacheKey, ScoreCache
from service.cost import Estimate
from service.deadline import Budget
from service.metrics import ServiceMetrics
from service.timing import Timeline
from service.variant import Variant


@dataclass(frozen=True)
class Scored:
    probs: np.ndarray  # (services x labels), in request order
    cached: int
    estimate: Estimate | None = None  # admission's estimate for the misses (None: all cached)


class Scorer:
    def __init__(self, cache: ScoreCache | None, tokenize_pool: Executor, metrics: ServiceMetrics) -> None:
        self.cache = cache
        self.tokenize_pool = tokenize_pool
        self.metrics = metrics

    async def score(
        self,
        variant: Variant,
        query: str,
        services: list[dict[str, Any]],
        budget: Budget,
        *,
        check_deadline: bool = True,
        timeline: Timeline | None = None,
    ) -> Scored:
        """Probabilities for every service, from the cache where possible and the batcher otherwise.

        Admission runs before tokenisation, on token lengths guessed from characters, so a refusal
        costs no tokenisation. Raises :class:`~service.errors.Overloaded` when admission refuses the
        misses or their budget runs out in the queue. ``timeline`` collects the request's phase marks
        (:mod:`service.timing`).
        """
        texts = [variant.model.service_text(s) for s in services]
        probs = np.empty((len(texts), len(variant.labels)), dtype=np.float32)
        keys, misses = self._lookup(variant, query, texts, probs)
        if not misses:
            _mark(timeline, "admit")
            return Scored(probs, len(texts))
        batcher = variant.batcher
        miss_texts = [texts[i] for i in misses]
        estimate = batcher.admit(
            batcher.cost.guess_lengths(query, miss_texts), budget, check_deadline=check_deadline
        )
        _mark(timeline, "admit")
        try:
            examples = await self._tokenize(variant, query, miss_texts)
        except BaseException:  # cancelled (the caller left) or failed: free the reservation
            batcher.release(estimate)
            raise
        _mark(timeline, "tokenize")
        batcher.cost.observe_tokens(query, miss_texts, [len(ids) for ids, _ in examples])
        fresh = await batcher.result(batcher.submit(examples, budget, estimate, timeline))
        _mark(timeline, "deliver")
        probs[misses] = fresh
        self._store(keys, misses, fresh)
        return Scored(probs, len(texts) - len(misses), estimate)

    def _lookup(
        self, variant: Variant, query: str, texts: list[str], probs: np.ndarray
    ) -> tuple[list[CacheKey] | None, list[int]]:
        """Fill ``probs`` from the cache; return the keys and the indices still to score."""
        if self.cache is None:
            return None, list(range(len(texts)))
        model_key, q = variant.model_key, variant.normalise(query)
        keys = [(model_key, q, variant.normalise(t)) for t in texts]
        misses = []
        for i, key in enumerate(keys):
            hit = self.cache.get(key)
            if hit is None:
                misses.append(i)
            else:
                probs[i] = hit
        hits = len(keys) - len(misses)
        if hits:
            self.metrics.cache_hits.labels(variant=variant.name).inc(hits)
        if misses:
            self.metrics.cache_misses.labels(variant=variant.name).inc(len(misses))
        return keys, misses

    def _store(self, keys: list[CacheKey] | None, misses: list[int], fresh: np.ndarray) -> None:
        if self.cache is None or keys is None:
            return
        for row, i in enumerate(misses):
            self.cache.put(keys[i], tuple(fresh[row].tolist()))

    async def _tokenize(self, variant: Variant, query: str, texts: list[str]) -> list[Example]:
        """Tokenise off the event loop (the tokenizer releases the GIL), timed per variant."""
        started = time.perf_counter()
        examples = await asyncio.get_running_loop().run_in_executor(
            self.tokenize_pool, variant.model.encoder.encode, [query] * len(texts), texts
        )
        self.metrics.tokenization_duration.labels(variant=variant.name).observe(time.perf_counter() - started)
        return examples


def _mark(timeline: Timeline | None, phase: str) -> None:
    """Mirrored requests carry no timeline: nobody reads their header."""
    if timeline is not None:
        timeline.mark(phase)

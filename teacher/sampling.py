"""Seeded draws of pairs shared by SFT, reward sampling and evaluation."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from relevance.data import Pair
from relevance.labels import LABELS


def sample_pairs(pairs: Sequence[Pair], n: int, seed: int = 13, balanced: bool = False) -> list[Pair]:
    """``n`` pairs drawn without replacement (all of them when ``n <= 0`` or ``n >= len``).

    ``balanced`` draws ``n // 3`` per label (a class with fewer pairs gives all it has; the
    remainder is filled from the other classes), so a rare class such as ``irrelevant`` is
    seen as often as the others. The result is shuffled with the same seed.
    """
    rng = random.Random(seed)
    pool = list(pairs)
    if n <= 0 or (n >= len(pool) and not balanced):
        rng.shuffle(pool)
        return pool
    if not balanced:
        return rng.sample(pool, n)
    by_label: dict[str | None, list[Pair]] = defaultdict(list)
    for pair in pool:
        by_label[pair.label].append(pair)
    if None in by_label:
        raise ValueError("a balanced draw needs a label on every pair")
    for group in by_label.values():
        rng.shuffle(group)
    chosen: list[Pair] = []
    quota = n // len(LABELS)
    for label in LABELS:
        chosen += by_label[label][:quota]
    rest = [p for label in LABELS for p in by_label[label][quota:]]
    rng.shuffle(rest)
    chosen += rest[: max(0, n - len(chosen))]
    rng.shuffle(chosen)
    return chosen

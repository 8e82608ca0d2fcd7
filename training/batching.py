"""Length-bucketed batches: pairs of similar length share a batch so little compute goes to padding."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import numpy as np
import torch


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random, bucket_factor: int = 50
) -> list[list[int]]:
    """Shuffle, sort within chunks of ``bucket_factor`` batches by length, cut, shuffle batch order.

    Keeps randomness across epochs (unlike a global sort) while cutting padding almost as much.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * bucket_factor
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Deterministic length-sorted batches for inference (callers restore the original order)."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size].tolist()


def to_tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in arrays.items()}

"""The relevance label scale shared by training, export, evaluation and serving.

Labels follow the Home Depot raters' 1..3 scale, bucketed from the mean rating ``r``:
``irrelevant`` (r < 1.5), ``partial`` (1.5 <= r < 2.5), ``exact`` (r >= 2.5).
The ranking score is the expected gain ``sum_c p(c) * gain(c)``, a number in [0, 1].
"""

from __future__ import annotations

LABELS: tuple[str, ...] = ("irrelevant", "partial", "exact")
DEFAULT_GAINS: tuple[float, ...] = (0.0, 0.5, 1.0)
# Rating each class stands for when a bundle does not carry measured class means.
DEFAULT_RATINGS: tuple[float, ...] = (1.0, 2.0, 3.0)


def label_from_rating(rating: float) -> str:
    """Bucket a mean human rating on the 1..3 scale into one of :data:`LABELS`."""
    if rating < 1.5:
        return "irrelevant"
    if rating < 2.5:
        return "partial"
    return "exact"


def label_index(label: str) -> int:
    try:
        return LABELS.index(label)
    except ValueError:
        raise ValueError(f"unknown label {label!r}; expected one of {', '.join(LABELS)}") from None

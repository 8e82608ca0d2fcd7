"""Supervised loss of the pair classifier: weighted cross-entropy plus a mean-rating regression term.

.. math::

    \\mathcal{L} = \\mathrm{CE}_w(z, y) + \\lambda\\,\\big(\\textstyle\\sum_c \\mathrm{softmax}(z)_c\\, r_c - r\\big)^2

``z`` are the logits, ``y`` the label, ``w`` per-class weights (``sqrt_inverse`` = 1/sqrt(class
frequency), normalised to mean 1: the ``irrelevant`` class is only ~7% of Home Depot), ``r_c`` the
mean human rating of class ``c`` and ``r`` the pair's own mean rating. The second term teaches the
model where inside a class a pair sits, which is what RMSE and NDCG reward. Pairs without a rating
(e.g. teacher-labelled) contribute only the CE term.

``y`` may also be a probability vector per pair (soft labels, e.g. a teacher's label probabilities
``q``): the first term is then the soft-label cross-entropy
:math:`-\\frac{1}{B}\\sum_i \\sum_c w_c\\, q_{ic} \\log \\mathrm{softmax}(z_i)_c` (logit KD; Hinton et al.,
arXiv:1503.02531), which is how CRSD's ``targets="soft"`` uses this class.

Example::

    loss_fn = RelevanceLoss(class_weights=torch.tensor([2.0, .7, .7]), class_ratings=(1.19, 2.09, 2.85))
    loss = loss_fn(logits, labels, ratings)   # ratings: float tensor, NaN where unknown
    loss = loss_fn(logits, teacher_probs)      # soft labels: float tensor (B, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def class_weights_from_counts(counts: Sequence[int], scheme: str) -> torch.Tensor:
    counts_t = torch.tensor(counts, dtype=torch.float).clamp(min=1)
    if scheme == "none":
        return torch.ones_like(counts_t)
    freq = counts_t / counts_t.sum()
    w = 1.0 / freq.sqrt() if scheme == "sqrt_inverse" else 1.0 / freq
    return w / w.mean()


class RelevanceLoss(nn.Module):
    def __init__(
        self,
        class_weights: torch.Tensor | None = None,
        class_ratings: Sequence[float] = (1.0, 2.0, 3.0),
        rating_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights if class_weights is not None else None)
        self.register_buffer("class_ratings", torch.tensor(class_ratings, dtype=torch.float))
        self.rating_weight = rating_weight

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, ratings: torch.Tensor | None = None) -> torch.Tensor:
        loss = F.cross_entropy(logits, labels, weight=self.class_weights)
        if self.rating_weight > 0 and ratings is not None:
            known = ~torch.isnan(ratings)
            if known.any():
                expected = logits.softmax(-1) @ self.class_ratings
                loss = loss + self.rating_weight * F.mse_loss(expected[known], ratings[known])
        return loss

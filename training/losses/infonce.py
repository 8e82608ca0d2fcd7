"""InfoNCE between two views of the same pairs, with the other pairs of the batch as negatives.

.. math::

    s_{ij} = \\frac{\\cos(a_i, b_j)}{\\tau}, \\qquad
    \\mathcal{L}_{a \\to b} = -\\frac{1}{B} \\sum_{i=1}^{B} \\log \\frac{\\exp s_{ii}}{\\sum_{j=1}^{B} \\exp s_{ij}}

and, with ``symmetric=True``, :math:`\\mathcal{L} = \\tfrac12(\\mathcal{L}_{a \\to b} + \\mathcal{L}_{b \\to a})`
(the second term reads the similarity matrix by columns). ``a_i`` and ``b_i`` are the projected
pooled representations of pair ``i`` under its two views (in CRSD: standard and
reasoning-augmented input of the same student), ``tau`` the temperature. The positive of ``a_i`` is
``b_i``; every ``b_j`` with ``j != i`` is a negative, so larger batches give more negatives.

From: van den Oord, Li, Vinyals, *Representation Learning with Contrastive Predictive Coding*,
arXiv:1807.03748 (2018); the cosine/temperature form with a projection head follows Chen et al.,
*A Simple Framework for Contrastive Learning of Visual Representations* (SimCLR), ICML 2020; its
use between a student's standard and reasoning-augmented views is CRSD (Xia et al., *From
Reasoning LLMs to BERT: A Two-Stage Distillation Framework for Search Relevance*, arXiv:2510.11056).

Inputs: two float tensors of the same shape ``(B, d)``; row ``i`` of both belongs to the same pair.

Example::

    loss_fn = InfoNCELoss(temperature=0.1)
    loss = loss_fn(projection(h_standard), projection(h_augmented))
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float, symmetric: bool = True) -> torch.Tensor:
    """The loss above as a function (see the module docstring)."""
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"InfoNCE needs two (batch, dim) tensors of the same shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}: pass one row per pair for each view")
    sim = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature
    target = torch.arange(sim.shape[0], device=sim.device)
    loss = F.cross_entropy(sim, target)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(sim.T, target))
    return loss


class InfoNCELoss(nn.Module):
    def __init__(self, temperature: float = 0.1, symmetric: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.symmetric = symmetric

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return info_nce(a, b, self.temperature, self.symmetric)

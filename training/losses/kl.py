"""KL divergence from a target view's predictive distribution to the trained view's, target frozen.

.. math::

    \\mathcal{L}_{KL} = T^2 \\cdot \\frac{1}{B} \\sum_{i=1}^{B} \\sum_c
        \\bar p_{ic} \\left(\\log \\bar p_{ic} - \\log q_{ic}\\right), \\qquad
    \\bar p = \\mathrm{sg}\\big(\\mathrm{softmax}(z^{aug} / T)\\big),\\; q = \\mathrm{softmax}(z^{std} / T)

``z^{aug}`` are the logits of the reasoning-augmented view (the target), ``z^{std}`` those of the
standard view (trained), ``sg`` stop-gradient: no gradient flows into the target, so the view that
sees the reasoning teaches the view that will run alone at inference and is not pulled towards it.
``T`` is the distillation temperature; the ``T^2`` factor keeps gradient sizes comparable across
``T`` (Hinton, Vinyals, Dean, *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531,
2015). Used as CRSD's self-distillation term (Xia et al., arXiv:2510.11056).

Inputs: ``student_logits`` and ``target_logits``, both ``(B, C)``.

Example::

    loss = ViewKLLoss(temperature=1.0)(logits_standard, logits_augmented)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ViewKLLoss(nn.Module):
    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, student_logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
        if student_logits.shape != target_logits.shape:
            raise ValueError(f"logits differ in shape: {tuple(student_logits.shape)} vs {tuple(target_logits.shape)}")
        t = self.temperature
        target = F.softmax(target_logits.detach() / t, dim=-1)
        log_q = F.log_softmax(student_logits / t, dim=-1)
        return F.kl_div(log_q, target, reduction="batchmean") * t * t

"""Contrastive Reasoning Self-Distillation (CRSD) loss: one student, a standard and a reasoning view.

.. math::

    \\mathcal{L} = \\lambda_{std}\\, \\mathcal{L}_{sup}(z^{std}, y, r)
                 + \\lambda_{aug}\\, \\mathcal{L}_{sup}(z^{aug}, y)
                 + \\lambda_{nce}\\, \\mathrm{InfoNCE}_\\tau\\big(g(h^{std}), g(h^{aug})\\big)
                 + \\lambda_{KL}\\, \\mathrm{KL}\\big(\\mathrm{sg}(p^{aug}) \\,\\|\\, p^{std}\\big)

* ``z^{std}`` / ``z^{aug}``: the student's logits on the standard input ``[CLS] q [SEP] s [SEP]``
  and on the reasoning-augmented input ``[CLS] q [SEP] s [SEP] reasoning [SEP]``;
  ``p = softmax(z)``; ``h``: the pooled ([CLS]) representation of each view; ``g``: a small
  projection head used only in training.
* ``L_sup``: :class:`~training.losses.relevance.RelevanceLoss` against the teacher's label ``y``
  (hard: a class index; soft: the teacher's label probabilities), plus the mean-rating term where
  a human rating ``r`` is known (standard view only).
* ``InfoNCE``: :mod:`training.losses.infonce`, other pairs of the batch as negatives.
* ``KL``: :mod:`training.losses.kl`, stop-gradient ``sg`` on the augmented view's distribution,
  so the view that reads the reasoning teaches the view that runs alone at inference.

A weight of 0 switches a term off (and, where no term needs the augmented view, it is not even
computed): the CRSD ablations are settings of this one loss. At inference only the standard view
runs, so the exported model is the plain classifier.

From: Xia et al., *From Reasoning LLMs to BERT: A Two-Stage Distillation Framework for Search
Relevance*, arXiv:2510.11056 (2025), section on CRSD.

Inputs: a :class:`ViewOutputs` (logits of both views and, when InfoNCE is on, the projected
representations), ``targets`` (``(B,)`` class indices or ``(B, C)`` probabilities) and optional
``ratings`` (``(B,)``, NaN where unknown).

Example::

    loss_fn = CRSDLoss(RelevanceLoss(), aug_weight=1.0, infonce_weight=0.2, kl_weight=0.5)
    loss, parts = loss_fn(ViewOutputs(z_std, z_aug, g_std, g_aug), teacher_labels)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from training.losses.infonce import InfoNCELoss
from training.losses.kl import ViewKLLoss
from training.losses.relevance import RelevanceLoss


@dataclass
class ViewOutputs:
    """One batch through the student: logits of each view and projected pooled representations."""

    logits_std: torch.Tensor
    logits_aug: torch.Tensor | None = None
    proj_std: torch.Tensor | None = None
    proj_aug: torch.Tensor | None = None


class CRSDLoss(nn.Module):
    def __init__(
        self,
        supervised: RelevanceLoss,
        std_weight: float = 1.0,
        aug_weight: float = 1.0,
        infonce_weight: float = 0.2,
        temperature: float = 0.1,
        symmetric: bool = True,
        kl_weight: float = 0.5,
        kl_temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if min(std_weight, aug_weight, infonce_weight, kl_weight) < 0:
            raise ValueError("CRSD loss weights must be >= 0")
        if std_weight == 0 and aug_weight == 0:
            raise ValueError("at least one supervised term (std_weight or aug_weight) must be > 0")
        self.supervised = supervised
        self.std_weight, self.aug_weight = std_weight, aug_weight
        self.infonce_weight, self.kl_weight = infonce_weight, kl_weight
        self.infonce = InfoNCELoss(temperature, symmetric)
        self.kl = ViewKLLoss(kl_temperature)

    @property
    def needs_augmented_view(self) -> bool:
        return self.aug_weight > 0 or self.infonce_weight > 0 or self.kl_weight > 0

    @property
    def augmented_view_needs_grad(self) -> bool:
        """False when the augmented view only serves as the (frozen) KL target."""
        return self.aug_weight > 0 or self.infonce_weight > 0

    @property
    def needs_projection(self) -> bool:
        return self.infonce_weight > 0

    def forward(
        self, out: ViewOutputs, targets: torch.Tensor, ratings: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its unweighted parts (detached, for the log)."""
        parts: dict[str, torch.Tensor] = {}
        total = out.logits_std.new_zeros(())
        if self.std_weight > 0:
            parts["loss_std"] = self.supervised(out.logits_std, targets, ratings)
            total = total + self.std_weight * parts["loss_std"]
        if self.needs_augmented_view and out.logits_aug is None:
            raise ValueError("this CRSD setting needs the reasoning-augmented view, but none was computed")
        if self.aug_weight > 0:
            parts["loss_aug"] = self.supervised(out.logits_aug, targets)
            total = total + self.aug_weight * parts["loss_aug"]
        if self.infonce_weight > 0:
            if out.proj_std is None or out.proj_aug is None:
                raise ValueError("InfoNCE is on but no projected representations were computed")
            parts["loss_infonce"] = self.infonce(out.proj_std, out.proj_aug)
            total = total + self.infonce_weight * parts["loss_infonce"]
        if self.kl_weight > 0:
            parts["loss_kl"] = self.kl(out.logits_std, out.logits_aug)
            total = total + self.kl_weight * parts["loss_kl"]
        return total, {k: v.detach() for k, v in parts.items()}

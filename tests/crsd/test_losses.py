"""The loss maths of CRSD: InfoNCE by hand, KL with a frozen target, soft labels, the composition."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import CRSDLoss, InfoNCELoss, RelevanceLoss, ViewKLLoss, ViewOutputs

# two pairs; cosine similarities a_i . b_j are [[1, 1/sqrt2], [0, 1/sqrt2]]; tau = 0.5
A = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
B = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # norms differ: InfoNCE must use cosine, not dot products
TAU = 0.5


def test_info_nce_matches_hand_computation():
    r = 1 / math.sqrt(2) / TAU  # s_12 = s_22 = sqrt2, s_11 = 2, s_21 = 0
    row_1 = -math.log(math.exp(2) / (math.exp(2) + math.exp(r)))
    row_2 = -math.log(math.exp(r) / (math.exp(0) + math.exp(r)))
    col_1 = -math.log(math.exp(2) / (math.exp(2) + math.exp(0)))
    col_2 = -math.log(math.exp(r) / (math.exp(r) + math.exp(r)))
    one_way = (row_1 + row_2) / 2
    assert one_way == pytest.approx(0.330085, abs=1e-6)
    assert InfoNCELoss(TAU, symmetric=False)(A, B).item() == pytest.approx(one_way, rel=1e-6)
    both = (one_way + (col_1 + col_2) / 2) / 2
    assert InfoNCELoss(TAU, symmetric=True)(A, B).item() == pytest.approx(both, rel=1e-6)


def test_info_nce_checks_shapes_and_temperature():
    with pytest.raises(ValueError, match="same shape"):
        InfoNCELoss()(A, B[:1])
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(temperature=0)


def test_kl_sends_no_gradient_into_the_target():
    student = torch.tensor([[0.5, 0.1, -0.3], [0.0, 0.2, 0.4]], requires_grad=True)
    target = torch.tensor([[1.0, 0.0, -1.0], [0.3, 0.3, 0.9]], requires_grad=True)
    loss = ViewKLLoss()(student, target)
    p = target.softmax(-1)
    expected = (p * (p.log() - student.log_softmax(-1))).sum(-1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    g_student, g_target = torch.autograd.grad(loss, [student, target], allow_unused=True)
    assert g_target is None
    assert g_student.abs().sum() > 0


def test_soft_labels_are_cross_entropy_against_the_teacher_probabilities():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
    q = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    expected = -(q * logits.log_softmax(-1)).sum(-1).mean()
    assert RelevanceLoss()(logits, q).item() == pytest.approx(expected.item(), rel=1e-6)


def test_crsd_loss_is_the_weighted_sum_and_zero_weights_switch_terms_off():
    torch.manual_seed(0)
    out = ViewOutputs(torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 8), torch.randn(4, 8))
    labels = torch.tensor([0, 1, 2, 1])
    loss_fn = CRSDLoss(RelevanceLoss(), std_weight=1.0, aug_weight=0.5, infonce_weight=0.2, temperature=0.1,
                       kl_weight=0.3)
    total, parts = loss_fn(out, labels)
    assert set(parts) == {"loss_std", "loss_aug", "loss_infonce", "loss_kl"}
    weighted = parts["loss_std"] + 0.5 * parts["loss_aug"] + 0.2 * parts["loss_infonce"] + 0.3 * parts["loss_kl"]
    assert total.item() == pytest.approx(weighted.item(), rel=1e-6)

    plain = CRSDLoss(RelevanceLoss(), aug_weight=0, infonce_weight=0, kl_weight=0)
    assert not plain.needs_augmented_view
    total, parts = plain(ViewOutputs(out.logits_std), labels)
    assert set(parts) == {"loss_std"}
    kl_only = CRSDLoss(RelevanceLoss(), aug_weight=0, infonce_weight=0, kl_weight=1.0)
    assert kl_only.needs_augmented_view and not kl_only.augmented_view_needs_grad
    with pytest.raises(ValueError, match="supervised"):
        CRSDLoss(RelevanceLoss(), std_weight=0, aug_weight=0)

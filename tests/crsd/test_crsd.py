"""The CRSD trainer: presets, training data, the two views, a few optimisation steps on a tiny BERT."""

from __future__ import annotations

import pytest
import torch

from relevance.bundle.manifest import ServiceTextTemplate
from relevance.encoding import PairEncoder
from training.config import PRESETS, CRSDConfig
from training.crsd import build_objective, class_mass, class_ratings_for, training_pairs


def _objective(settings, preset="crsd", **overrides):
    from transformers import AutoTokenizer

    cfg = CRSDConfig.from_preset(preset, **{**settings, "out": "unused", **overrides})
    torch.manual_seed(0)
    encoder = PairEncoder(AutoTokenizer.from_pretrained(cfg.init).backend_tokenizer, cfg.max_length)
    pairs, _ = training_pairs(cfg)
    objective = build_objective(cfg, encoder, ServiceTextTemplate(fields=cfg.text_fields), pairs, class_ratings_for(cfg))
    return cfg, pairs, objective


def test_presets_are_settings_of_one_config(crsd_settings):
    assert {"human_budget", "human_full", "teacher_hard", "teacher_soft", "student_kd", "crsd", "crsd_no_infonce",
            "crsd_no_aug_ce", "crsd_no_kl"} == set(PRESETS)
    crsd = CRSDConfig.from_preset("crsd", **crsd_settings)
    assert crsd.uses_reasoning and crsd.infonce_weight > 0 and crsd.kl_weight > 0 and crsd.aug_ce_weight > 0
    assert CRSDConfig.from_preset("crsd_no_kl", **crsd_settings).kl_weight == 0
    human = CRSDConfig.from_preset("human_budget", **crsd_settings)
    assert human.label_source == "human" and human.train_split == "teacher_train" and not human.needs_teacher
    assert CRSDConfig.from_preset("teacher_soft", **crsd_settings).targets == "soft"
    assert crsd.to_json()["preset"] == "crsd"
    with pytest.raises(ValueError, match="unknown preset"):
        CRSDConfig.from_preset("crsd_plus", **crsd_settings)
    with pytest.raises(ValueError, match="soft targets"):
        CRSDConfig(**crsd_settings, label_source="human", targets="soft")
    with pytest.raises(ValueError, match="aug_max_length"):
        CRSDConfig(**{**crsd_settings, "aug_max_length": 16})


def test_training_pairs_teacher_runs_use_annotated_pool_human_runs_a_seeded_budget(crsd_settings):
    teacher = CRSDConfig.from_preset("teacher_hard", **crsd_settings)
    pairs, stats = training_pairs(teacher)
    assert pairs and all(p.teacher is not None and p.split == "pool" for p in pairs) and stats.matched == len(pairs)
    budget = CRSDConfig.from_preset("human_budget", **{**crsd_settings, "limit_train": 40})
    sample, _ = training_pairs(budget)
    assert len(sample) == 40 and all(p.split == "teacher_train" and p.teacher is None for p in sample)
    again, _ = training_pairs(CRSDConfig.from_preset("human_budget", **{**crsd_settings, "limit_train": 40, "seed": 99}))
    assert [p.id for p in again] == [p.id for p in sample]  # the budget sample does not depend on the run seed


def test_augmented_view_keeps_query_and_service_when_the_reasoning_is_long(crsd_settings):
    cfg, pairs, objective = _objective(crsd_settings)
    for p in pairs[:20]:
        p.teacher = {**p.teacher, "reasoning": " ".join(["drill for the tools ;"] * 60)}
    from training.student import encode_pairs

    aug_encoder = PairEncoder(objective.encoder.tokenizer, cfg.aug_max_length)
    template = ServiceTextTemplate(fields=cfg.text_fields)
    augmented = encode_pairs(aug_encoder, template, pairs[:20], [p.teacher["reasoning"] for p in pairs[:20]])
    enc = objective.encoder
    for pair, (ids, types) in zip(pairs[:20], augmented.examples):
        q = enc.token_ids([pair.query])[0]
        s = enc.token_ids([template.render(pair.service)])[0]
        assert len(ids) == cfg.aug_max_length
        assert ids[: len(q) + 2] == [enc.cls_id, *q, enc.sep_id]
        assert ids[len(q) + 2 : len(q) + 3 + len(s)] == [*s, enc.sep_id]
        assert ids[-1] == enc.sep_id and len(ids) > len(q) + len(s) + 4  # some reasoning survives, cut at the end
        assert types == [0] * (len(q) + 2) + [1] * (len(ids) - len(q) - 2)


def test_crsd_steps_lower_the_loss_on_a_tiny_random_bert(crsd_settings):
    cfg, pairs, objective = _objective(crsd_settings)
    module = objective.module.train()
    assert module.projection is not None and objective.augmented is not None
    idx = list(range(16))
    # a random tiny BERT starts with near-identical representations: a high rate moves it in a few steps
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        loss, parts = objective.loss(module, idx, "cpu")
        assert set(parts) == {"loss_std", "loss_aug", "loss_infonce", "loss_kl"}
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
    assert parts["loss_infonce"] < 0.9 * torch.log(torch.tensor(16.0))  # the views of a pair found each other
    assert all(p.grad is not None for p in module.projection.parameters())  # InfoNCE trains the head


def test_kl_target_gets_no_gradient(crsd_settings):
    _, _, objective = _objective(crsd_settings)
    out = objective.outputs(objective.module.train(), list(range(8)), "cpu")
    kl = objective.loss_fn.kl(out.logits_std, out.logits_aug)
    grad_aug, grad_std = torch.autograd.grad(kl, [out.logits_aug, out.logits_std], allow_unused=True)
    assert grad_aug is None and grad_std.abs().sum() > 0

    # when KL is the augmented view's only use, that view is not even part of the graph
    _, _, kl_only = _objective(crsd_settings, aug_ce_weight=0.0, infonce_weight=0.0)
    out = kl_only.outputs(kl_only.module.train(), list(range(8)), "cpu")
    assert out.logits_aug is not None and not out.logits_aug.requires_grad and out.logits_std.requires_grad
    assert kl_only.module.projection is None


def test_baseline_presets_run_the_standard_view_only(crsd_settings):
    for preset in ("human_full", "teacher_hard", "teacher_soft"):
        _, _, objective = _objective(crsd_settings, preset)
        assert objective.augmented is None and objective.module.projection is None
    _, _, soft = _objective(crsd_settings, "teacher_soft")
    assert soft.targets.dtype == torch.float and soft.targets.shape[1] == 3
    assert torch.isnan(soft.ratings).all()  # pool's human ratings never reach a distilled student


def test_class_weights_follow_the_targets_the_loss_sees():
    hard = torch.tensor([1, 1, 1, 2, 2, 0])
    assert class_mass(hard) == [1.0, 3.0, 2.0]
    # the teacher almost never *picks* class 0 but gives it 20% mass on every pair: the soft run's
    # weights must see 20%, not the hard count of zero (which made the student predict only class 0)
    soft = torch.tensor([[0.2, 0.5, 0.3]] * 4)
    assert class_mass(soft) == pytest.approx([0.8, 2.0, 1.2])


def test_soft_run_weights_come_from_probability_mass(crsd_settings):
    _, _, soft = _objective(crsd_settings, "teacher_soft", class_weighting="sqrt_inverse")
    mass = soft.targets.sum(0)
    expected = (1 / (mass / mass.sum()).sqrt())
    assert torch.allclose(soft.loss_fn.supervised.class_weights, expected / expected.mean(), atol=1e-5)


def test_student_kd_adds_the_human_split_as_one_hot_targets_with_human_ratings(crsd_settings):
    import math

    from relevance.data import load_pairs

    cfg, pairs, objective = _objective(crsd_settings, "student_kd")
    annotated = [p for p in pairs if p.teacher is not None]
    human = [p for p in pairs if p.teacher is None]
    expected_human = [p for p in load_pairs(cfg.data, "teacher_train") if p.label is not None]
    assert len(human) == len(expected_human) and annotated and all(p.split == "pool" for p in annotated)
    for i, pair in enumerate(pairs):
        target = objective.targets[i].tolist()
        if pair.teacher is None:  # a human pair: one-hot on its label, its human rating kept
            assert target == [float(lbl == pair.label) for lbl in ("irrelevant", "partial", "exact")]
            assert objective.ratings[i].item() == pytest.approx(pair.rating)
        else:  # a teacher pair: the teacher's probabilities, no human rating (pool's stay unused)
            assert target == pytest.approx([pair.teacher["probs"][lbl] for lbl in ("irrelevant", "partial", "exact")])
            assert math.isnan(objective.ratings[i].item())
    with pytest.raises(ValueError, match="human_split"):
        CRSDConfig.from_preset("crsd", **crsd_settings, human_split="teacher_train")  # reasoning views need chains
    with pytest.raises(ValueError, match="human_split"):
        CRSDConfig.from_preset("student_kd", **crsd_settings, train_split="teacher_train")

"""CRSD: distil the teacher's labels and reasoning into the student, and the baselines it is compared with.

Contrastive Reasoning Self-Distillation (Xia et al., arXiv:2510.11056) trains *one* student encoder
on two views of each teacher-annotated pair, the standard ``[CLS] q [SEP] s [SEP]`` and the
reasoning-augmented ``[CLS] q [SEP] s [SEP] reasoning [SEP]`` (reasoning truncated first, never the
query: :class:`~relevance.encoding.PairEncoder`), with the loss of :mod:`training.losses.crsd`. A
small projection head feeds InfoNCE during training only; the checkpoint written to ``<out>/best``
is the plain sequence classifier (same ``student.json``), so export and serving are unchanged.

:class:`CRSDConfig` extends the student's :class:`~training.config.StudentTrainConfig`; the loop is
the student's own (:func:`training.student.fit`) with :class:`CRSDObjective` plugged in. Every
row of the comparison is a named preset of this one config (:data:`PRESETS`): human labels,
teacher hard / soft labels, CRSD and its ablations are settings of the same trainer, so they share
data handling, steps and dev-based selection.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import torch
from torch import nn

from relevance.annotations.reader import AnnotationStats
from relevance.data import Pair, load_pairs
from relevance.encoding import PairEncoder
from relevance.labels import DEFAULT_RATINGS, LABELS, label_index
from training.annotations import load_annotated_pairs
from training.config import PRESETS, CRSDConfig
from training.losses.crsd import CRSDLoss, ViewOutputs
from training.losses.relevance import RelevanceLoss, class_weights_from_counts
from training.student import (
    EncodedPairs,
    batch_inputs,
    class_mean_ratings,
    encode_pairs,
    fit,
    load_student,
    start_run,
    training_record,
)


class ProjectionHead(nn.Sequential):
    """``Linear -> ReLU -> Linear`` on the pooled representation (SimCLR-style); training only."""

    def __init__(self, hidden: int, dim: int) -> None:
        super().__init__(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, dim))


class CRSDModel(nn.Module):
    """The student classifier plus the train-only projection head; one forward runs both views."""

    def __init__(self, student: nn.Module, projection_dim: int = 0) -> None:
        super().__init__()
        self.student = student
        self.projection = ProjectionHead(student.config.hidden_size, projection_dim) if projection_dim else None

    def _view(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.student(**inputs, output_hidden_states=self.projection is not None)
        if self.projection is None:
            return out.logits, None
        return out.logits, self.projection(out.hidden_states[-1][:, 0])  # pooled = final [CLS] state

    def forward(
        self, standard: dict[str, torch.Tensor], augmented: dict[str, torch.Tensor] | None = None, augmented_grad: bool = True
    ) -> ViewOutputs:
        logits_std, proj_std = self._view(standard)
        if augmented is None:
            return ViewOutputs(logits_std, proj_std=proj_std)
        with torch.set_grad_enabled(augmented_grad and torch.is_grad_enabled()):
            logits_aug, proj_aug = self._view(augmented)
        return ViewOutputs(logits_std, logits_aug, proj_std, proj_aug)


class CRSDObjective:
    """Both views of a batch through :class:`CRSDModel`, scored by :class:`CRSDLoss` (plugs into ``fit``)."""

    def __init__(self, module: CRSDModel, encoder: PairEncoder, standard: EncodedPairs, augmented: EncodedPairs | None,
                 targets: torch.Tensor, ratings: torch.Tensor, loss_fn: CRSDLoss) -> None:
        if loss_fn.needs_augmented_view and augmented is None:
            raise ValueError("the loss needs the reasoning-augmented view: pass the augmented encodings")
        if loss_fn.needs_projection and module.projection is None:
            raise ValueError("InfoNCE is on but the model has no projection head: build CRSDModel with projection_dim")
        self.module, self.encoder = module, encoder
        self.standard, self.augmented = standard, augmented if loss_fn.needs_augmented_view else None
        self.targets, self.ratings, self.loss_fn = targets, ratings, loss_fn

    @property
    def lengths(self) -> list[int]:
        # bucket by the longer view: it dominates the compute
        return (self.augmented or self.standard).lengths

    @staticmethod
    def classifier(module: CRSDModel):
        return module.student

    def to(self, device) -> "CRSDObjective":
        self.loss_fn = self.loss_fn.to(device)
        return self

    def outputs(self, module: CRSDModel, idx: list[int], device) -> ViewOutputs:
        augmented = batch_inputs(self.encoder, self.augmented, idx, device) if self.augmented else None
        return module(batch_inputs(self.encoder, self.standard, idx, device), augmented,
                      augmented_grad=self.loss_fn.augmented_view_needs_grad)

    def loss(self, module: CRSDModel, idx: list[int], device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.outputs(module, idx, device)
        return self.loss_fn(out, self.targets[idx].to(device), self.ratings[idx].to(device))


def training_pairs(cfg: CRSDConfig) -> tuple[list[Pair], AnnotationStats | None]:
    """The pairs a run trains on: annotations joined, unusable pairs dropped, the budget sample drawn."""
    stats = None
    if cfg.annotations and cfg.needs_teacher:
        pairs, stats = load_annotated_pairs(cfg.data, cfg.train_split, cfg.annotations)
    else:
        pairs = load_pairs(cfg.data, cfg.train_split)
    if cfg.needs_teacher:
        pairs = [p for p in pairs if p.teacher is not None]
        if not pairs:
            raise ValueError(f"no pair of {cfg.train_split!r} carries a teacher annotation: pass annotations=FILE.jsonl")
    if cfg.label_source == "human":
        pairs = [p for p in pairs if p.label is not None]
    if cfg.human_split:  # human-labelled pairs beside the teacher's: no teacher annotation, a human label
        pairs += [replace(p, teacher=None) for p in load_pairs(cfg.data, cfg.human_split) if p.label is not None]
    if cfg.limit_train and cfg.limit_train < len(pairs):
        pairs = random.Random(cfg.subset_seed).sample(pairs, cfg.limit_train)
    return pairs, stats


def class_ratings_for(cfg: CRSDConfig) -> tuple[float, ...]:
    """Mean human rating per class from ``ratings_split``: one scale for every run of a comparison."""
    if not cfg.ratings_split:
        return DEFAULT_RATINGS
    return class_mean_ratings([p for p in load_pairs(cfg.data, cfg.ratings_split) if p.label is not None])


def hard_label(pair: Pair, cfg: CRSDConfig) -> str:
    """The label a pair is trained on: the teacher's, except for the human pairs of ``human_split``."""
    return pair.teacher["label"] if cfg.label_source == "teacher" and pair.teacher is not None else pair.label


def soft_target(pair: Pair) -> list[float]:
    """The teacher's probabilities, or one-hot on the human label for a pair without a teacher."""
    if pair.teacher is None:
        return [float(lbl == pair.label) for lbl in LABELS]
    return [pair.teacher["probs"][lbl] for lbl in LABELS]


def class_mass(targets: torch.Tensor) -> list[float]:
    """How much of the training signal each class carries: label counts, or for soft targets the summed
    probabilities. Class weights must come from the targets the loss sees: weighting soft targets by
    hard-label counts multiplies every pair's (small) mass on a class the teacher almost never picks
    by that class's huge inverse-frequency weight, and the student learns to predict only that class."""
    if targets.dtype.is_floating_point:
        return targets.sum(0).tolist()
    return torch.bincount(targets, minlength=len(LABELS)).float().tolist()


def build_objective(cfg: CRSDConfig, encoder: PairEncoder, template, pairs: list[Pair], class_ratings) -> CRSDObjective:
    """Encode both views, build targets, loss and model (random parts drawn from the current seed)."""
    labels = [hard_label(p, cfg) for p in pairs]
    if cfg.targets == "soft":
        targets = torch.tensor([soft_target(p) for p in pairs], dtype=torch.float)
    else:
        targets = torch.tensor([label_index(lbl) for lbl in labels])
    counts = class_mass(targets)
    # the rating term learns human ratings only: every pair's for human labels, the human_split's otherwise
    human = [cfg.label_source == "human" or p.teacher is None for p in pairs]
    ratings = torch.tensor([p.rating if h and p.rating is not None else float("nan") for p, h in zip(pairs, human)])
    supervised = RelevanceLoss(class_weights_from_counts(counts, cfg.class_weighting), class_ratings, cfg.rating_loss_weight)
    loss_fn = CRSDLoss(supervised, cfg.std_ce_weight, cfg.aug_ce_weight, cfg.infonce_weight, cfg.temperature,
                       cfg.symmetric, cfg.kl_weight, cfg.kl_temperature)
    standard = encode_pairs(encoder, template, pairs)
    augmented = None
    if loss_fn.needs_augmented_view:
        aug_encoder = PairEncoder(encoder.tokenizer, cfg.aug_max_length)
        augmented = encode_pairs(aug_encoder, template, pairs, [p.teacher["reasoning"] for p in pairs])
    model = CRSDModel(load_student(cfg.init, layers=cfg.layers, ffn=cfg.ffn), cfg.projection_dim if loss_fn.needs_projection else 0)
    return CRSDObjective(model, encoder, standard, augmented, targets, ratings, loss_fn)


def count_parameters(module: nn.Module | None) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def train_crsd(cfg: CRSDConfig, command: str | None = None) -> dict:
    """Train one preset/setting; the dev-best plain classifier goes to ``<out>/best`` (see ``fit``)."""
    run = start_run(cfg)
    pairs, stats = training_pairs(cfg)
    class_ratings = class_ratings_for(cfg)
    objective = build_objective(cfg, run.encoder, run.template, pairs, class_ratings)
    extra = {
        "distillation": {
            "preset": cfg.preset,
            "label_source": cfg.label_source,
            "targets": cfg.targets,
            "annotations": cfg.annotations or None,
            "annotation_stats": stats.to_json() if stats else None,
            "n_train": len(pairs),
        },
        "parameters": {
            "student": count_parameters(objective.module.student),
            "train_only_projection_head": count_parameters(objective.module.projection),
        },
    }
    return fit(cfg, run, objective, class_ratings, extra, training=crsd_training_record(cfg, pairs, command))


def crsd_training_record(cfg: CRSDConfig, pairs: list[Pair], command: str | None) -> dict:
    """The preset's method, and the teachers whose annotations the run learnt from (name/version, pairs)."""
    details: dict = {"preset": cfg.preset, "label_source": cfg.label_source, "targets": cfg.targets}
    if cfg.human_split:
        details["human_split"] = cfg.human_split
    if cfg.needs_teacher:
        teachers = Counter(p.teacher.get("teacher") for p in pairs if p.teacher)  # "name/version"
        details["teacher"] = [{"name": name, "pairs": k} for name, k in teachers.most_common()]
        details["annotations"] = cfg.annotations or None
    description = PRESETS[cfg.preset].description if cfg.preset in PRESETS else "custom settings"
    return training_record(cfg, len(pairs), description, command, **details)

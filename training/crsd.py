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
from dataclasses import dataclass, field

import torch
from torch import nn

from relevance.data import Pair, load_pairs
from relevance.encoding import PairEncoder
from relevance.labels import DEFAULT_RATINGS, LABELS, label_index
from training.annotations import AnnotationStats, load_annotated_pairs
from training.config import StudentTrainConfig
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
)


@dataclass
class CRSDConfig(StudentTrainConfig):
    out: str = field(default="runs/crsd", metadata={"help": "output folder (checkpoints, metrics)"})
    train_split: str = field(default="pool", metadata={"help": "split to train on (teacher-annotated for teacher targets)"})
    limit_train: int = field(
        default=0, metadata={"help": "train on a random sample of N pairs drawn with subset_seed (0 = all): equal budgets"}
    )
    preset: str = field(default="crsd", metadata={"help": "the preset these settings started from (see PRESETS)"})
    annotations: str = field(
        default="", metadata={"help": "teacher annotation JSONL joined onto train_split by pair id ('' = the data's own)"}
    )
    label_source: str = field(default="teacher", metadata={"help": "teacher | human: whose label the supervised terms learn"})
    targets: str = field(default="hard", metadata={"help": "hard (a label) | soft (the teacher's label probabilities)"})
    std_ce_weight: float = field(default=1.0, metadata={"help": "weight of the standard view's supervised loss"})
    aug_ce_weight: float = field(default=1.0, metadata={"help": "weight of the augmented view's supervised loss"})
    infonce_weight: float = field(default=0.2, metadata={"help": "weight of InfoNCE between the two views (0 = off)"})
    temperature: float = field(default=0.1, metadata={"help": "InfoNCE temperature"})
    symmetric: bool = field(default=True, metadata={"help": "InfoNCE in both directions (std->aug and aug->std)"})
    projection_dim: int = field(default=128, metadata={"help": "output size of the train-only projection head"})
    kl_weight: float = field(default=0.5, metadata={"help": "weight of KL(sg(p_aug) || p_std) (0 = off)"})
    kl_temperature: float = field(default=1.0, metadata={"help": "softmax temperature of the KL term"})
    aug_max_length: int = field(
        default=160, metadata={"help": "tokens of the reasoning-augmented view (reasoning is cut first)"}
    )
    ratings_split: str = field(
        default="teacher_train",
        metadata={"help": "split whose human ratings give each class's mean rating (RMSE, bundle); '' = 1/2/3"},
    )
    subset_seed: int = field(default=0, metadata={"help": "seed of the limit_train sample (same data for every seed)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.label_source not in {"teacher", "human"}:
            raise ValueError("label_source must be teacher or human")
        if self.targets not in {"hard", "soft"}:
            raise ValueError("targets must be hard or soft")
        if self.targets == "soft" and self.label_source != "teacher":
            raise ValueError("soft targets are the teacher's probabilities: set label_source='teacher'")
        if min(self.std_ce_weight, self.aug_ce_weight, self.infonce_weight, self.kl_weight) < 0:
            raise ValueError("loss weights must be >= 0")
        if self.std_ce_weight == 0 and self.aug_ce_weight == 0:
            raise ValueError("std_ce_weight or aug_ce_weight must be > 0")
        if self.temperature <= 0 or self.kl_temperature <= 0:
            raise ValueError("temperatures must be > 0")
        if self.infonce_weight > 0 and self.projection_dim < 1:
            raise ValueError("InfoNCE needs a projection head: projection_dim >= 1")
        if self.aug_max_length < self.max_length:
            raise ValueError("aug_max_length must be >= max_length (the augmented view contains the standard one)")

    @property
    def uses_reasoning(self) -> bool:
        return self.aug_ce_weight > 0 or self.infonce_weight > 0 or self.kl_weight > 0

    @property
    def needs_teacher(self) -> bool:
        return self.label_source == "teacher" or self.uses_reasoning

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "CRSDConfig":
        """The preset's settings, then ``overrides`` (e.g. data, annotations, out, seed)."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name].settings, "preset": name, **overrides})


@dataclass(frozen=True)
class Preset:
    description: str
    settings: dict
    equal_budget: bool = False  # the comparison caps its training pairs at the annotated pool count


_NO_VIEWS = {"aug_ce_weight": 0.0, "infonce_weight": 0.0, "kl_weight": 0.0}
_HUMAN = {"label_source": "human", "train_split": "teacher_train", **_NO_VIEWS}

PRESETS: dict[str, Preset] = {
    "human_budget": Preset("human labels of teacher_train, as many pairs as annotated pool pairs", _HUMAN, True),
    "human_full": Preset("human labels of all teacher_train (reference)", _HUMAN),
    "teacher_hard": Preset("teacher hard labels of pool (label-only KD)", {"targets": "hard", **_NO_VIEWS}),
    "teacher_soft": Preset("teacher label probabilities of pool (logit KD)", {"targets": "soft", **_NO_VIEWS}),
    "crsd": Preset("CRSD: both views' CE + InfoNCE + KL", {}),
    "crsd_no_infonce": Preset("CRSD without InfoNCE", {"infonce_weight": 0.0}),
    "crsd_no_aug_ce": Preset("CRSD without the augmented-view loss", {"aug_ce_weight": 0.0}),
    "crsd_no_kl": Preset("CRSD without KL", {"kl_weight": 0.0}),
}


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
    if cfg.limit_train and cfg.limit_train < len(pairs):
        pairs = random.Random(cfg.subset_seed).sample(pairs, cfg.limit_train)
    return pairs, stats


def class_ratings_for(cfg: CRSDConfig) -> tuple[float, ...]:
    """Mean human rating per class from ``ratings_split``: one scale for every run of a comparison."""
    if not cfg.ratings_split:
        return DEFAULT_RATINGS
    return class_mean_ratings([p for p in load_pairs(cfg.data, cfg.ratings_split) if p.label is not None])


def hard_label(pair: Pair, cfg: CRSDConfig) -> str:
    return pair.teacher["label"] if cfg.label_source == "teacher" else pair.label


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
        targets = torch.tensor([[p.teacher["probs"][lbl] for lbl in LABELS] for p in pairs], dtype=torch.float)
    else:
        targets = torch.tensor([label_index(lbl) for lbl in labels])
    counts = class_mass(targets)
    human_ratings = cfg.label_source == "human"
    ratings = torch.tensor([p.rating if human_ratings and p.rating is not None else float("nan") for p in pairs])
    supervised = RelevanceLoss(class_weights_from_counts(counts, cfg.class_weighting), class_ratings, cfg.rating_loss_weight)
    loss_fn = CRSDLoss(supervised, cfg.std_ce_weight, cfg.aug_ce_weight, cfg.infonce_weight, cfg.temperature,
                       cfg.symmetric, cfg.kl_weight, cfg.kl_temperature)
    standard = encode_pairs(encoder, template, pairs)
    augmented = None
    if loss_fn.needs_augmented_view:
        aug_encoder = PairEncoder(encoder.tokenizer, cfg.aug_max_length)
        augmented = encode_pairs(aug_encoder, template, pairs, [p.teacher["reasoning"] for p in pairs])
    model = CRSDModel(load_student(cfg.init), cfg.projection_dim if loss_fn.needs_projection else 0)
    return CRSDObjective(model, encoder, standard, augmented, targets, ratings, loss_fn)


def count_parameters(module: nn.Module | None) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def train_crsd(cfg: CRSDConfig) -> dict:
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
    return fit(cfg, run, objective, class_ratings, extra)

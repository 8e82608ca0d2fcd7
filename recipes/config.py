"""Settings of the recipes, each stage's own config nested (its options keep their names and help)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from export.config import ExportConfig
from relevance.config import RunConfig
from training.config import CRSDConfig, QuantAwareConfig

SMALL_STUDENT_PRESET = "student_kd"
# the recipe's own defaults over the preset's: a 3-layer student (every other layer of the 6-layer start
# model), one pass over the soft labels
STUDENT_DEFAULTS = {"layers": (0, 2, 4), "epochs": 1.0}


def _export_field(name: str, default=dataclasses.MISSING) -> dataclasses.Field:
    """A field of :class:`ExportConfig`, its help text and (unless given) its default the export's."""
    source = next(f for f in dataclasses.fields(ExportConfig) if f.name == name)
    return field(default=source.default if default is dataclasses.MISSING else default,
                 metadata=dict(source.metadata))


# The export's settings the recipe offers, passed through unchanged
EXPORT_FIELDS = ("name", "version", "int8_scheme", "ship", "max_abs_diff", "min_int8_agreement", "max_int8_f1_drop")


def _student_defaults() -> CRSDConfig:
    return CRSDConfig.from_preset(SMALL_STUDENT_PRESET, **STUDENT_DEFAULTS)


# Settings the recipe itself decides for a stage (paths, seeds, what the previous stage fixed); the
# command line does not offer them for the nested configs.
STUDENT_FIXED = ("data", "out", "seed", "threads", "preset", "annotations")
QAT_FIXED = ("data", "out", "seed", "threads", "init", *QuantAwareConfig.SHAPE_FIELDS, "text_fields", "max_length",
             "dev_split", "test_split", "train_split")


@dataclass
class SmallStudentConfig(RunConfig):
    """``relevance shrink``: a smaller, faster student distilled from an accurate bundle, end to end.

    1. the ``teacher`` bundle's class probabilities on the student's ``train_split`` (pool: unlabelled
       search logs here) become soft labels (``relevance annotate --backend bundle``);
    2. the ``student_kd`` preset trains a student with the chosen ``layers`` on them plus the human
       labels of ``human_split`` (``relevance distill``);
    3. quantisation-aware fine-tuning for the static INT8 graph (``relevance quant-aware``);
    4. the gated export (``relevance export``), bundle to ``bundle`` (default ``OUT/bundle``).

    A stage whose output is complete is not rerun (the annotation file is resumed pair by pair; an
    interrupted training stage starts again). Under ``accelerate launch`` the training stages run on
    every process and annotation and export on the main one.
    """

    out: str = field(default="runs/shrink", metadata={
        "help": "work folder: OUT/student and OUT/qat (checkpoints), OUT/bundle; finished stages are kept"})
    teacher: str = field(default="models/default", metadata={
        "help": "the accurate bundle whose class probabilities on the student's train_split are the soft labels"})
    annotations: str = field(default="", metadata={
        "help": "the teacher's annotation JSONL (resumed if partial; '' = OUT/annotations.jsonl)"})
    annotate_batch_size: int = field(default=256, metadata={"help": "pairs per teacher ONNX run when annotating"})
    bundle: str = field(default="", metadata={"help": "bundle folder to write ('' = OUT/bundle)"})
    name: str = _export_field("name", "relevance-student-small")
    version: str = _export_field("version")
    int8_scheme: str = _export_field("int8_scheme", "static")
    ship: tuple[str, ...] = _export_field("ship", ("int8",))
    max_abs_diff: float = _export_field("max_abs_diff")
    min_int8_agreement: float = _export_field("min_int8_agreement")
    max_int8_f1_drop: float = _export_field("max_int8_f1_drop")
    student: CRSDConfig = field(default_factory=_student_defaults, metadata={
        "help": "distillation (the student_kd preset)", "cli_prefix": ""})
    qat: QuantAwareConfig = field(default_factory=QuantAwareConfig, metadata={
        "help": "quantisation-aware fine-tuning", "cli_prefix": "qat_"})

    def __post_init__(self) -> None:
        self.ship = tuple(self.ship)
        # what was given of the QAT settings, as `relevance quant-aware` takes them (its head rate follows lr)
        self.qat_given = {} if isinstance(self.qat, QuantAwareConfig) else dict(self.qat)
        fixed = {**self.stage_settings("student"), "annotations": str(self.annotations_path)}
        if isinstance(self.student, dict):
            self.student = CRSDConfig.from_preset(SMALL_STUDENT_PRESET, **{**STUDENT_DEFAULTS, **self.student,
                                                                           **fixed})
        else:
            self.student = dataclasses.replace(self.student, **fixed)
        if not self.student.human_split and self.student.train_split == self.student.dev_split:
            raise ValueError("the student trains on the teacher's labels of train_split, never on dev")
        self.qat = self.qat_config(init="")  # validates the given settings now, not after hours of training

    @property
    def annotations_path(self) -> Path:
        return Path(self.annotations) if self.annotations else Path(self.out) / "annotations.jsonl"

    @property
    def bundle_path(self) -> Path:
        return Path(self.bundle) if self.bundle else Path(self.out) / "bundle"

    def stage_dir(self, stage: str) -> Path:
        return Path(self.out) / stage

    def stage_settings(self, stage: str) -> dict:
        """What every training stage takes from the recipe: the data, its folder, the seed, the threads."""
        return {"data": self.data, "out": str(self.stage_dir(stage)), "seed": self.seed, "threads": self.threads}

    def qat_config(self, init: str) -> QuantAwareConfig:
        """The quantisation-aware stage's settings for the checkpoint ``init`` ('' = placeholder)."""
        fixed = {**self.stage_settings("qat"), "dev_split": self.student.dev_split,
                 "test_split": self.student.test_split}
        if not init:
            return QuantAwareConfig(**{**self.qat_given, **fixed, "max_length": self.student.max_length,
                                       "text_fields": self.student.text_fields})
        from training.quantization_aware import quant_aware_config

        return quant_aware_config(init, {**self.qat_given, **fixed})

    def export_config(self, checkpoint: str) -> ExportConfig:
        return ExportConfig(data=self.data, checkpoint=checkpoint, out=str(self.bundle_path),
                            precisions=tuple(dict.fromkeys(("fp32", "int8", *self.ship))),
                            dev_split=self.student.dev_split, test_split=self.student.test_split,
                            **{name: getattr(self, name) for name in EXPORT_FIELDS})

    def to_json(self) -> dict:
        return {"data": self.data, "out": self.out, "seed": self.seed, "teacher": self.teacher,
                "annotations": str(self.annotations_path), "bundle": str(self.bundle_path),
                "student": self.student.to_json(), "qat": self.qat.to_json(),
                "export": {name: list(v) if isinstance(v := getattr(self, name), tuple) else v
                           for name in EXPORT_FIELDS}}

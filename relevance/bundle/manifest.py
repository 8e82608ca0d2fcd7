"""``bundle.json``: the declarative config of one model (cf. Triton's ``config.pbtxt``).

Unknown fields are rejected (``extra="forbid"``) so a typo or a manifest from a newer,
incompatible exporter fails loudly instead of being half-understood.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from relevance.labels import DEFAULT_GAINS, DEFAULT_RATINGS, LABELS

MANIFEST_NAME = "bundle.json"
FORMAT_VERSION = 1

Precision = Literal["fp32", "int8", "fp16"]
Engine = Literal["onnxruntime", "openvino"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def field_text(value: Any) -> str | None:
    """The text of one service field: a string as it is, a number or boolean as JSON writes it
    (``12.5`` -> ``"12.5"``, ``True`` -> ``"true"``), ``None`` as missing, anything else as ``str()``.
    Training data and the service both go through it, so a field reads the same on both sides."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return str(value)


class ServiceTextTemplate(_Strict):
    """How the service side of a pair is built from the service's fields.

    The first field is written bare; later fields are written as ``"<field>: <value>"``
    so the model can tell a brand from a description. Empty or missing fields are skipped.
    Each field is cut to ``max_field_chars`` before tokenisation, which then truncates to
    the bundle's ``max_length`` tokens.
    """

    fields: tuple[str, ...] = ("title",)
    separator: str = " ; "
    max_field_chars: int = Field(512, gt=0)

    @field_validator("fields")
    @classmethod
    def _not_empty(cls, fields: tuple[str, ...]) -> tuple[str, ...]:
        if not fields:
            raise ValueError("text template needs at least one field")
        return fields

    def render(self, service: dict[str, Any]) -> str:
        parts: list[str] = []
        for i, name in enumerate(self.fields):
            value = field_text(service.get(name))  # 0 and false are values, not missing ones
            if not value:
                continue
            value = " ".join(value.split())[: self.max_field_chars]
            parts.append(value if i == 0 else f"{name}: {value}")
        return self.separator.join(parts)


class FileEntry(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class GraphEntry(_Strict):
    """One ONNX graph of the bundle and the precision it runs at."""

    path: str
    precision: Precision
    # ONNX Runtime graph transformers switched off when a session loads this graph (names as in
    # InferenceSession(disabled_optimizers=...)): export undoes fusions whose CPU kernels are slow
    # (export.cpu_kernels), and ORT would otherwise rebuild them at load time.
    disabled_optimizers: tuple[str, ...] = ()
    # The runtime that reads the graph: ONNX Runtime's graphs use its contrib operators; an OpenVINO graph
    # is the static INT8 graph in standard QDQ operators (relevance optimize --engine openvino).
    engine: Engine = "onnxruntime"


class BundleManifest(_Strict):
    format_version: int = FORMAT_VERSION
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    created: datetime
    labels: tuple[str, ...] = LABELS
    gains: tuple[float, ...] = DEFAULT_GAINS
    # Mean human rating of each class on the training data: expected rating = sum p(c) * rating(c).
    ratings: tuple[float, ...] = DEFAULT_RATINGS
    max_length: int = Field(gt=2)
    text: ServiceTextTemplate = ServiceTextTemplate()
    graphs: tuple[GraphEntry, ...]
    default_precision: Precision
    opset: int
    tokenizer: str = "tokenizer.json"
    model_inputs: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
    files: dict[str, FileEntry]
    source_checkpoint: str
    evaluation: dict[str, dict] = Field(default_factory=dict)
    parity: dict[str, float | int | bool | str] = Field(default_factory=dict)
    # How the INT8 graph was built (scheme, MatMuls kept block-wise, calibration agreement).
    quantization: dict[str, Any] = Field(default_factory=dict)
    # How the model was trained, copied from the checkpoint by export: method (human labels, CRSD,
    # quantisation-aware fine-tuning of another checkpoint, ...), data and split, teacher name and
    # version where there is one, the command; ``from`` nests the record of the checkpoint it started
    # from. Empty for bundles exported before it existed.
    training: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> "BundleManifest":
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"format_version {self.format_version} is not supported (expected {FORMAT_VERSION})")
        n = len(self.labels)
        if len(self.gains) != n or len(self.ratings) != n:
            raise ValueError(f"labels, gains and ratings must have the same length ({n})")
        if not all(0.0 <= g <= 1.0 for g in self.gains):
            raise ValueError("gains must lie in [0, 1] so that the score does")
        precisions = [g.precision for g in self.graphs]
        if self.default_precision not in precisions:
            raise ValueError(f"default_precision {self.default_precision!r} has no graph (graphs: {precisions})")
        listed = {g.path for g in self.graphs} | {self.tokenizer}
        unlisted = sorted(p for p in listed if p not in self.files)
        if unlisted:
            raise ValueError(f"files without a sha256 entry in 'files': {', '.join(unlisted)}")
        return self

    def graph(self, precision: Precision | None = None) -> GraphEntry:
        wanted = precision or self.default_precision
        for g in self.graphs:
            if g.precision == wanted:
                return g
        have = ", ".join(g.precision for g in self.graphs)
        raise ValueError(f"bundle {self.name} has no {wanted} graph (it has: {have})")

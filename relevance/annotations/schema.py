"""One teacher annotation record: the versioned contract between whatever annotates pairs (the teacher
stage's ``relevance annotate``, the oracle, fixture data) and what reads annotations (distillation).

One JSON object per line, keyed by the data's pair id; ids and teacher outputs only, never pair text::

    {"schema_version": 1, "id": "123", "status": "ok",
     "teacher": {"label": "partial", "probs": {"irrelevant": 0.1, "partial": 0.7, "exact": 0.2},
                 "reasoning": "Wants: ...\\nType: same (drill)\\n...", "name": "SmolLM2-135M-Instruct",
                 "version": "dapt+sft+dpo@...", "prompt_version": "chain-v2", "attempts": 1}}
    {"schema_version": 1, "id": "124", "status": "failed",
     "teacher": {"error": "no 'Label:' line ...", "output": "<first 300 chars>", "name": ..., "version": ...,
                 "prompt_version": ..., "attempts": 3}}

``probs`` may be ``null`` (a backend without label probabilities, the oracle); ``implied_label`` (what
a program-made chain's findings point to on their own) and ``output`` are written only when known.
Records written before the schema was versioned carry no ``schema_version`` and are version 1.

Writing validates strictly (unknown fields and labels are refused, ``extra="forbid"``), so a writer
cannot produce a record the reader half-understands; reading (:mod:`relevance.annotations.reader`)
is lenient about the records of older writers and counts what it cannot use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_serializer

from relevance.labels import LABELS

ANNOTATION_SCHEMA_VERSION = 1


def check_schema_version(version: object) -> None:
    """Refuse a record of a schema this reader does not know (``None``: written before versioning, i.e. 1)."""
    if version is not None and version != ANNOTATION_SCHEMA_VERSION:
        raise ValueError(f"annotation schema_version {version!r} is not supported "
                         f"(expected {ANNOTATION_SCHEMA_VERSION}): read it with a newer relevance")


class _Block(BaseModel):
    """A record's ``teacher`` block; the fields named in ``_OMITTED_WHEN_NONE`` are left out when unset."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _OMITTED_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit_unknown(self, handler) -> dict[str, Any]:
        data = handler(self)
        return {k: v for k, v in data.items() if not (v is None and k in self._OMITTED_WHEN_NONE)}


class TeacherLabel(_Block):
    """What the teacher said about a pair: its label, label probabilities and reasoning."""

    _OMITTED_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"implied_label"})

    label: str
    probs: dict[str, float] | None = None
    reasoning: str = ""  # the chain without its label line (what the student's second view reads)
    name: str = Field(min_length=1)
    version: str
    prompt_version: str
    attempts: int = Field(ge=0)  # generations it took (0: nothing was generated, e.g. the oracle)
    implied_label: str | None = None

    @field_validator("label", "implied_label")
    @classmethod
    def _known_label(cls, label: str | None) -> str | None:
        if label is not None and label not in LABELS:
            raise ValueError(f"unknown label {label!r}; expected one of {', '.join(LABELS)}")
        return label

    @field_validator("probs")
    @classmethod
    def _probabilities(cls, probs: dict[str, float] | None) -> dict[str, float] | None:
        if probs is not None:
            unknown = sorted(set(probs) - set(LABELS))
            if unknown:
                raise ValueError(f"probs of unknown labels {unknown}")
            if not all(math.isfinite(p) and p >= 0 for p in probs.values()):
                raise ValueError("probs must be finite and >= 0")
        return probs


class TeacherFailure(_Block):
    """Why the teacher gave no label for a pair (retries exhausted): such a pair is never labelled."""

    _OMITTED_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"output"})

    error: str = Field(min_length=1)
    output: str | None = None  # the start of the last malformed output
    name: str = Field(min_length=1)
    version: str
    prompt_version: str
    attempts: int = Field(ge=0)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = ANNOTATION_SCHEMA_VERSION
    id: str = Field(min_length=1)

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        check_schema_version(version)
        return version


class AnnotatedRecord(_Record):
    """A pair the teacher labelled."""

    status: Literal["ok"] = "ok"
    teacher: TeacherLabel


class FailedRecord(_Record):
    """A pair the teacher could not label."""

    status: Literal["failed"] = "failed"
    teacher: TeacherFailure


AnnotationRecord = Annotated[AnnotatedRecord | FailedRecord, Field(discriminator="status")]
_RECORD = TypeAdapter(AnnotationRecord)


def validate_record(obj: AnnotatedRecord | FailedRecord | Mapping[str, Any]) -> AnnotatedRecord | FailedRecord:
    """``obj`` as a record of this schema (a JSON object is validated strictly; ``ValueError`` if it is not one)."""
    if isinstance(obj, AnnotatedRecord | FailedRecord):
        return obj
    return _RECORD.validate_python(dict(obj))


def record_json(record: AnnotatedRecord | FailedRecord) -> dict[str, Any]:
    """The JSON object of ``record``, as it is written to an annotation file."""
    return record.model_dump(mode="json")

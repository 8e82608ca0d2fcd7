"""What annotation, evaluation, reward sampling and bootstrapping call: the teacher backend interface.

A backend turns pairs into completions: ``complete(pairs, sample=..., n=..., hints=...)`` returns,
per pair, ``n`` :class:`Completion` objects (the generated text and, when available, the label
probabilities). :class:`~teacher.backends.local.LocalBackend` runs a Hugging Face causal LM in this
process; :class:`~teacher.backends.http.HttpBackend` calls an OpenAI-compatible server. Every
backend names the prompt its answers were made with (``prompt_version``, which records carry): a
prompting backend's template tag, or the version an annotation file's records already carry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from relevance.data import Pair
from relevance.labels import LABELS
from teacher.chains.prompts import PromptTemplate

_LABEL_PREFIX = re.compile(r"label\s*:\s*$", re.IGNORECASE)
_DECOR = re.compile(r"[*_`]+")


@dataclass
class Completion:
    text: str
    probs: dict[str, float] | None = None
    error: str | None = None  # the backend could not produce an output (e.g. HTTP failure)


class TeacherBackend(Protocol):
    name: str
    version: str

    @property
    def prompt_version(self) -> str: ...

    def complete(self, pairs: Sequence[Pair], *, sample: bool = False, n: int = 1,
                 hints: Sequence[str | None] | None = None) -> list[list[Completion]]: ...


class PromptedBackend:
    """A backend that renders each pair through a :class:`PromptTemplate`; its records carry the tag."""

    template: PromptTemplate

    @property
    def prompt_version(self) -> str:
        return self.template.tag


def softmax(values: dict[str, float]) -> dict[str, float]:
    top = max(values.values())
    exps = {k: math.exp(v - top) for k, v in values.items()}
    total = sum(exps.values())
    return {k: exps[k] / total for k in LABELS if k in exps}


def ends_with_label_prefix(text: str) -> bool:
    """True when ``text`` ends with ``Label:`` (markdown decoration and trailing spaces ignored)."""
    return bool(_LABEL_PREFIX.search(_DECOR.sub("", text).rstrip()))

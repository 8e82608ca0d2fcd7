"""A relevance bundle as the teacher: the accurate student labels pairs for a smaller student.

Distilling a fast student (fewer layers) from the accurate one needs the accurate one's soft labels
on unlabelled search logs; this backend gives them through the same annotation step, file format
and resumable writer as an LLM teacher. Each completion is the line ``Label: <argmax>`` with the
bundle's class probabilities: no reasoning (the record's ``reasoning`` is empty), so it serves the
label-only presets (``teacher_soft``, ``teacher_hard``), not CRSD. Scoring goes through
:class:`~relevance.model.BundleModel`, the service's own code path.
"""

from __future__ import annotations

from collections.abc import Sequence

from relevance.bundle import load_bundle
from relevance.data import Pair
from relevance.model import BundleModel
from teacher.backends.base import Completion, PromptedBackend
from teacher.chains.prompts import PromptTemplate


class BundleBackend(PromptedBackend):
    def __init__(self, bundle: str, template: PromptTemplate | None = None, threads: int = 0) -> None:
        self.model = BundleModel.load(load_bundle(bundle), intra_op_threads=threads)
        manifest = self.model.bundle.manifest
        self.name, self.version = manifest.name, f"{manifest.version} ({self.model.precision})"
        self.labels = manifest.labels
        self.template = template or PromptTemplate()  # unused for scoring; its tag goes into the records

    def complete(self, pairs: Sequence[Pair], *, sample: bool = False, n: int = 1,
                 hints: Sequence[str | None] | None = None, want_probs: bool = True) -> list[list[Completion]]:
        """The bundle is deterministic: ``sample`` and ``hints`` change nothing, ``n`` repeats the answer."""
        probs = self.model.predict_probs([p.query for p in pairs], [p.service for p in pairs])
        out = []
        for row in probs:
            dist = {label: float(p) for label, p in zip(self.labels, row)}
            out.append([Completion(f"Label: {max(dist, key=dist.get)}", dist) for _ in range(n)])
        return out

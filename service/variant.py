"""A model variant: one loaded bundle with its own batcher, as A/B routing and the shadow see it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from relevance.backends import Backend
from relevance.bundle import load_bundle
from relevance.bundle.manifest import Precision
from relevance.model import BundleModel
from service.batcher import Batcher, BatchLimits, Example
from service.cache import make_normaliser
from service.metrics import ServiceMetrics

# Tests (and operators debugging a backend) wrap a variant's backend, e.g. to make it slow or failing.
BackendWrapper = Callable[[str, Backend], Backend]

# A real pair, so warm-up runs real token ids at every shape it profiles.
_WARMUP_QUERY = "cordless drill"
_WARMUP_TITLE = "heavy duty stainless steel cordless power drill driver kit with battery and charger"


@dataclass
class Variant:
    name: str
    model: BundleModel
    batcher: Batcher
    normalise: Callable[[str], str]

    @property
    def model_key(self) -> str:
        """Identity of the numbers this variant produces: same weights and precision, same scores."""
        return f"{self.model.bundle.checksum}:{self.model.precision}"

    @property
    def labels(self) -> tuple[str, ...]:
        return self.model.bundle.manifest.labels

    def scores(self, probs: np.ndarray) -> np.ndarray:
        """Expected gain per pair: the ranking score in [0, 1]."""
        return probs @ self.model.gains

    def top_labels(self, probs: np.ndarray) -> np.ndarray:
        """The most probable label's name per pair."""
        return np.asarray(self.labels)[probs.argmax(-1)]

    def warmup_example(self) -> Example:
        """One real pair: warm-up builds every run shape from its token ids."""
        return self.model.encoder.encode([_WARMUP_QUERY], [_WARMUP_TITLE])[0]


class ModelLoader:
    """Loads each (bundle, precision) once: variants that share a bundle share its ORT session."""

    def __init__(self, providers: list[str], intra_op_threads: int, allow_spinning: bool) -> None:
        self.providers = providers
        self.intra_op_threads = intra_op_threads
        self.allow_spinning = allow_spinning
        self._loaded: dict[tuple[Path, str | None], BundleModel] = {}

    def load(self, path: Path, precision: Precision | None) -> BundleModel:
        key = (path.resolve(), precision)
        if key not in self._loaded:
            self._loaded[key] = BundleModel.load(
                load_bundle(path),
                precision,
                self.providers,
                self.intra_op_threads,
                allow_spinning=self.allow_spinning,
            )
        # A shallow copy per variant: wrapping one variant's backend must not wrap its twin's.
        return dataclasses.replace(self._loaded[key])


def build_variant(
    name: str,
    model: BundleModel,
    limits: BatchLimits,
    metrics: ServiceMetrics,
    loop_lag: Callable[[], float] = lambda: 0.0,
) -> Variant:
    m = model.bundle.manifest
    metrics.register_variant(name, m.name, m.version, model.precision)
    batcher = Batcher(name, model, len(m.labels), limits, metrics, m.max_length, loop_lag)
    return Variant(name, model, batcher, make_normaliser(model.encoder.tokenizer))

"""A loaded bundle ready to score: the encoder (tokenisation) and the backend (inference) of one variant.

``relevance eval`` and export's INT8 gate call :meth:`BundleModel.predict_probs`, which goes through
the same :meth:`encode` / :meth:`run` pair the service's batcher uses, so offline numbers are the
numbers the service produces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from relevance.backends import Backend, OnnxBackend, OpenVinoBackend
from relevance.bundle import Bundle
from relevance.bundle.manifest import Precision
from relevance.encoding import PairEncoder
from relevance.metrics import softmax

Example = tuple[list[int], list[int]]



@dataclass
class BundleModel:
    bundle: Bundle
    encoder: PairEncoder
    backend: Backend
    precision: str

    @classmethod
    def load(
        cls,
        bundle: Bundle,
        precision: Precision | None = None,
        providers: Sequence[str] = ("cpu",),
        intra_op_threads: int = 0,
        allow_spinning: bool = True,
        profile_prefix: str | None = None,
    ) -> BundleModel:
        m = bundle.manifest
        graph = m.graph(precision)
        backend: Backend
        if graph.engine == "openvino":
            if profile_prefix:
                raise ValueError(f"{graph.path} runs on OpenVINO: ONNX Runtime's profile does not apply")
            backend = OpenVinoBackend(bundle.root / graph.path, intra_op_threads, max_length=m.max_length)
        else:
            backend = OnnxBackend(bundle.root / graph.path, providers, intra_op_threads, allow_spinning=allow_spinning,
                                  disabled_optimizers=graph.disabled_optimizers, profile_prefix=profile_prefix)
        precision = graph.precision
        encoder = PairEncoder.from_file(bundle.tokenizer_path, m.max_length)
        return cls(bundle, encoder, backend, precision)

    @property
    def gains(self) -> np.ndarray:
        return np.asarray(self.bundle.manifest.gains, dtype=np.float32)

    def service_text(self, service: dict[str, str | None]) -> str:
        return self.bundle.manifest.text.render(service)

    def encode(self, query: str | Sequence[str], services: Sequence[dict]) -> list[Example]:
        queries = [query] * len(services) if isinstance(query, str) else list(query)
        return self.encoder.encode(queries, [self.service_text(s) for s in services])

    def run(self, examples: Sequence[Example]) -> np.ndarray:
        """Class probabilities for already-encoded examples (one padded ORT run)."""
        return softmax(self.backend.predict(self.encoder.pad(examples)))

    def predict_probs(
        self, queries: Sequence[str], services: Sequence[dict], batch_size: int = 64, progress=None
    ) -> np.ndarray:
        """Probabilities in input order, computed on length-sorted batches."""
        examples = self.encode(queries, services)
        order = np.argsort([len(ids) for ids, _ in examples], kind="stable")
        out = np.zeros((len(examples), len(self.bundle.manifest.labels)), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self.run([examples[i] for i in idx])
            if progress is not None:
                progress(len(idx))
        return out

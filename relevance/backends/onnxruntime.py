"""The ONNX Runtime backend: sessions in, logits out (the :class:`~relevance.backends.base.Backend` interface).

GPU providers are used only when ``onnxruntime-gpu`` is installed and asked for; otherwise the CPU
provider runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def resolve_providers(requested: Sequence[str]) -> list[str]:
    """Map short names (cpu, cuda, tensorrt) to ORT providers, dropping the unavailable ones (logged)."""
    available = set(ort.get_available_providers())
    providers = []
    for name in requested:
        full = PROVIDER_ALIASES.get(name.lower(), name)
        if full in available:
            providers.append(full)
        else:
            log.warning("execution provider %s is not available (install onnxruntime-gpu for GPUs); skipped", full)
    if "CPUExecutionProvider" not in providers:
        providers.append("CPUExecutionProvider")
    return providers


EXACT_INT8_KEY = "session.x64quantprecision"


class OnnxBackend:
    def __init__(
        self,
        graph: str | Path,
        providers: Sequence[str] = ("cpu",),
        intra_op_threads: int = 0,
        inter_op_threads: int = 1,
        allow_spinning: bool = True,
        disabled_optimizers: Sequence[str] = (),
        profile_prefix: str | None = None,
    ) -> None:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        # Exact INT8 arithmetic on x86 CPUs without VNNI: ORT's default AVX2 u8s8 kernel adds pairs of
        # products in saturating 16-bit lanes, so a static INT8 graph scores a little differently there
        # than on the VNNI machine that gated it (and than quantisation-aware training simulated). The
        # exact kernel is slower there; where VNNI exists the default kernel is already exact.
        options.add_session_config_entry(EXACT_INT8_KEY, "1")
        if not allow_spinning:
            # Idle ORT threads otherwise spin for a while after each run, burning the core the event loop
            # needs to parse the next request; offline jobs keep spinning (the default) for throughput.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if profile_prefix:
            # ORT's per-node trace (relevance lab profile reads it); written by session.end_profiling()
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        self.providers = resolve_providers(providers)
        self.session = ort.InferenceSession(str(graph), sess_options=options, providers=self.providers,
                                            disabled_optimizers=list(disabled_optimizers) or None)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def predict(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: inputs[name] for name in self.input_names}
        return self.session.run(None, feed)[0].astype(np.float32, copy=False)

    def warmup(self, widths: Sequence[int] = (8, 32, 64), batch: int = 8) -> float:
        """Run a few shapes once so the first real request does not pay for allocation; returns seconds."""
        started = time.perf_counter()
        for w in widths:
            ids = np.ones((batch, w), dtype=np.int64)
            self.predict({"input_ids": ids, "attention_mask": ids, "token_type_ids": np.zeros_like(ids)})
        return time.perf_counter() - started

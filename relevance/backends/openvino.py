"""The OpenVINO backend: an ONNX graph compiled by OpenVINO's CPU plugin, padded inputs in, logits out.

For bundle graphs whose entry says ``engine: openvino`` (``relevance optimize --engine openvino``
writes them: the static INT8 graph in standard QDQ operators). On Intel CPUs with AMX, OpenVINO runs
the INT8 MatMuls on AMX tiles, which ONNX Runtime's CPU kernels do not (``relevance loadtest engines``
measures both on the machine at hand). Installed with the ``openvino`` extra.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

# Runs are padded to a multiple of this many tokens (zeros, masked out: scores unchanged). OpenVINO's CPU
# plugin builds its kernels for each new input shape (milliseconds, the first time), so
# every exact (pairs, tokens) shape of dynamic traffic would pay that once per process and again whenever
# the kernel cache evicts it; at 8 a bundle has a few dozen shapes, all compiled at load (see compile_shapes).
WIDTH_MULTIPLE = 8
# pairs per run compiled at load: the service's default max_run_pairs (a larger run compiles on first use)
COMPILED_RUN_PAIRS = 16


class OpenVinoBackend:
    def __init__(self, graph: str | Path, intra_op_threads: int = 0, inference_precision: str = "f32",
                 max_length: int = 0, width_multiple: int = WIDTH_MULTIPLE) -> None:
        try:
            import openvino as ov
        except ImportError as err:  # the serving image installs it only with the extra
            raise ImportError(f"{graph} runs on OpenVINO: pip install 'relevance-service[openvino]'") from err
        config = {
            # one stream with the latency hint: a request's runs execute one after another on all the
            # threads, as the batcher issues them (throughput streams would split the cores instead)
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": "1",
            # dynamic batch and sequence axes: without a cache every new run shape would re-plan kernels
            "CPU_RUNTIME_CACHE_CAPACITY": "5000",
        }
        if intra_op_threads:
            config["INFERENCE_NUM_THREADS"] = str(intra_op_threads)
        # f32 for what is not INT8 (attention, softmax, GELU, LayerNorm): the plugin's default on CPUs with
        # AMX or AVX-512 BF16 is bf16, which moves a static INT8 student's labels (96.55% dev agreement with
        # ONNX Runtime against 99.30% at f32, relevance loadtest engines) for no speed. '' = that default.
        if inference_precision:
            config["INFERENCE_PRECISION_HINT"] = inference_precision
        self.compiled = ov.Core().compile_model(str(graph), "CPU", config)
        self.input_names = [i.get_any_name() for i in self.compiled.inputs]
        self.inference_precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self._output = self.compiled.output(0)
        self._local = threading.local()  # an infer request holds per-run state: one per calling thread
        self.width_multiple = width_multiple  # 1 = no padding (a graph whose scores depend on it)
        self.compile_seconds = self.compile_shapes(max_length) if max_length else 0.0

    def predict(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        feed = {name: inputs[name] for name in self.input_names}
        width = feed["input_ids"].shape[1]
        extra = -width % self.width_multiple
        if extra:
            feed = {name: np.pad(a, ((0, 0), (0, extra))) for name, a in feed.items()}
        # infer() releases the GIL while it computes, like ONNX Runtime's run()
        result = request.infer(feed)
        return np.array(result[self._output], dtype=np.float32)

    def compile_shapes(self, max_length: int, max_pairs: int = COMPILED_RUN_PAIRS) -> float:
        """Run every padded shape up to ``max_pairs`` x ``max_length`` once, so no request pays for its
        kernels; returns the seconds it took."""
        started = time.perf_counter()
        step = max(self.width_multiple, 1)
        for width in range(step, max_length + step, step):
            for pairs in range(1, max_pairs + 1):
                ids = np.ones((pairs, width), dtype=np.int64)
                self.predict({"input_ids": ids, "attention_mask": ids, "token_type_ids": np.zeros_like(ids)})
        return time.perf_counter() - started

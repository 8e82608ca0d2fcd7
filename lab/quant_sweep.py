"""Compare INT8 schemes for a bundle's fp32 graph: dev label agreement with fp32, size, speed.

    relevance lab quant-sweep runs/bundle-full

The parity gate (``relevance export``) judges only the scheme export uses; this sweep shows why
that scheme: each candidate graph is built from the bundle's fused fp32 graph, scored on the whole
dev split through the serving path (:class:`relevance.backends.OnnxBackend`), and timed on batches of
real test pairs with the same threads, in one run.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from export.mixed_precision import Batches, calibration_batches, matmul_input_ranges, plan_mixed
from export.parity import batched_vs_alone
from export.transforms import quantize_int8, quantize_per_tensor, weight_matmuls
from lab.config import QuantSweepConfig
from relevance.backends import OnnxBackend
from relevance.bundle import load_bundle
from relevance.data import load_pairs
from relevance.metrics import softmax
from relevance.model import BundleModel


def ffn_down_nodes(graph: Path) -> tuple[str, ...]:
    """The FFN down-projections (``.../output/dense/MatMul``), the most outlier-sensitive inputs."""
    return tuple(n.name for n in onnx.load(str(graph)).graph.node
                 if n.op_type == "MatMul" and "/output/dense/" in n.name and "attention" not in n.name)


def mixed(fp32: Path, dst: Path, calibration: Batches) -> Path:
    plan = plan_mixed(fp32, calibration, progress=lambda msg: print(msg, flush=True))
    print(f"mixed plan: {len(plan.block_wise_nodes)} block-wise: {plan.block_wise_nodes}", flush=True)
    print(f"mixed plan tried (block-wise count, calibration agreement): {plan.tried}", flush=True)
    return quantize_int8(fp32, dst, per_tensor_nodes=plan.per_tensor_nodes, activation_ranges=plan.activation_ranges)


def candidates(fp32: Path, calibration: Batches = ()) -> dict[str, Callable[[Path], Path]]:
    ranges = matmul_input_ranges(fp32, calibration) if calibration else {}
    return {
        "mixed: sensitive MatMuls block-wise, the rest per-tensor static (`--int8-scheme mixed`)":
            lambda d: mixed(fp32, d, calibration),
        "per-tensor static (calibrated ranges) + int8 embeddings":
            lambda d: quantize_int8(fp32, d, per_tensor_nodes=weight_matmuls(fp32), activation_ranges=ranges),
        "quantize_dynamic (per-tensor dynamic activations)": lambda d: quantize_per_tensor(fp32, d),
        "quantize_dynamic, FFN down-projections fp32": lambda d: quantize_per_tensor(fp32, d, exclude=ffn_down_nodes(fp32)),
        "MatMulNBits 8-bit, blocks of 32, fp32 embeddings": lambda d: quantize_int8(fp32, d, 32, embeddings=False),
        "MatMulNBits 8-bit, blocks of 32 + int8 embeddings (export's scheme)": lambda d: quantize_int8(fp32, d, 32),
        "MatMulNBits 8-bit, blocks of 64 + int8 embeddings": lambda d: quantize_int8(fp32, d, 64),
        "MatMulNBits 8-bit, blocks of 128 + int8 embeddings": lambda d: quantize_int8(fp32, d, 128),
    }


def run(cfg: QuantSweepConfig, command: str) -> int:
    """Build, score and time every candidate scheme and print the table; 2 if the data is missing.

    ``command`` is the command line printed above the table (the one that reproduces it)."""
    bundle = load_bundle(cfg.bundle)
    reference = BundleModel.load(bundle, "fp32", intra_op_threads=cfg.threads)
    try:
        dev, test = load_pairs(cfg.data, "dev"), load_pairs(cfg.data, "test")
        calibration_pool = load_pairs(cfg.data, cfg.calibration_split)
    except FileNotFoundError as err:
        print(f"the sweep needs real pairs: {err}", file=sys.stderr)
        return 2
    encode = reference.encode
    dev_examples = encode([p.query for p in dev], [p.service for p in dev])
    order = np.argsort([len(ids) for ids, _ in dev_examples], kind="stable")
    dev_batches = [order[i : i + 64] for i in range(0, len(order), 64)]
    calibration = calibration_batches(reference, random.Random(0).sample(
        calibration_pool, min(cfg.calibration_pairs, len(calibration_pool))))
    rng = random.Random(0)
    timed = [reference.encoder.pad(encode([p.query for p in c], [p.service for p in c]))
             for c in (rng.sample(test, 32) for _ in range(cfg.batches))]

    def measure(backend: OnnxBackend) -> tuple[np.ndarray, float, float]:
        probs = np.zeros((len(dev_examples), len(bundle.manifest.labels)), dtype=np.float32)
        for idx in dev_batches:
            probs[idx] = softmax(backend.predict(reference.encoder.pad([dev_examples[i] for i in idx])))
        backend.predict(timed[0])
        started = time.perf_counter()
        for _ in range(3):
            for batch in timed:
                backend.predict(batch)
        speed = 3 * 32 * len(timed) / (time.perf_counter() - started)
        return probs, speed, batched_vs_alone(backend, timed[0])

    fp32_graph = bundle.graph_path("fp32")
    ref_probs, ref_speed, ref_batch = measure(reference.backend)
    rows = [("fp32 (fused)", 1.0, 0.0, ref_speed, ref_batch, fp32_graph.stat().st_size)]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, build) in enumerate(candidates(fp32_graph, calibration).items()):
            graph = build(Path(tmp) / f"candidate{i}.onnx")
            probs, speed, batch = measure(OnnxBackend(graph, intra_op_threads=cfg.threads))
            agreement = float((probs.argmax(1) == ref_probs.argmax(1)).mean())
            rows.append((name, agreement, float(np.abs(probs - ref_probs).max()), speed, batch, graph.stat().st_size))
            print(f"{name}: agreement {agreement:.4f}", flush=True)
    print(f"\n`{command}` "
          f"({len(dev)} dev pairs; speed: batches of 32 test pairs, {cfg.threads} threads)\n")
    print("| graph | dev label agreement with fp32 | max prob diff | pairs/s (batch 32) "
          "| max logit diff, batched vs alone | size MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, agreement, diff, speed, batch, size in rows:
        print(f"| {name} | {agreement:.2%} | {diff:.3f} | {speed:.0f} | {batch:.1e} | {size / 1e6:.1f} |")
    return 0

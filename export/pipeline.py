"""``relevance export``: checkpoint -> fused fp32 / INT8 / FP16 ONNX -> parity gate -> bundle folder.

The bundle is assembled in a temporary sibling folder and moved into place only after the gate
passes, so a failed export never leaves a half-written bundle where the service would load it.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import onnx

from export.config import ExportConfig
from export.mixed_precision import calibration_batches, matmul_input_ranges, plan_mixed
from export.onnx_graph import export_onnx
from export.optimize import rewrite_graphs
from export.parity import (
    TorchBackend,
    batch_diff,
    check,
    compare_labels,
    label_agreement,
    logit_diff,
)
from export.transforms import convert_fp16, fuse_bert, quantize_int8, weight_matmuls
from relevance.bundle import GraphEntry, load_bundle
from relevance.bundle.manifest import ServiceTextTemplate
from relevance.bundle.writer import staged_bundle, write_manifest
from relevance.data import Pair, load_pairs
from relevance.evaluate import bundle_evaluation
from relevance.labels import DEFAULT_GAINS, DEFAULT_RATINGS, LABELS
from relevance.model import BundleModel

GRAPH_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}
BATCH_CHECK_PAIRS = 32  # one service-sized batch for the batched-vs-alone check


def build_int8(fp32: BundleModel, dst: Path, scheme: str, calibration: list[Pair], max_loss: float,
               meta: dict) -> dict:
    """Write the INT8 graph; returns how it was built (for the manifest's ``quantization``).

    A quantisation-aware checkpoint (``meta["quant_aware"]``) is quantised with the input ranges it
    was trained with, so the graph matches the simulation it is gated against; other checkpoints
    calibrate on ``calibration``.
    """
    graph = fp32.bundle.graph_path("fp32")
    if scheme == "blockwise":
        quantize_int8(graph, dst)
        return {"scheme": "blockwise"}
    if scheme == "static":
        if "quant_aware" in meta:
            from training.quantization_aware import onnx_input_ranges

            tensor_of = {n.name: n.input[0] for n in onnx.load(str(graph)).graph.node}
            ranges = {tensor_of[node]: r for node, r in onnx_input_ranges(meta).items()}
            source = {"activation_ranges_from": "quant-aware checkpoint"}
        else:
            ranges = matmul_input_ranges(graph, calibration_batches(fp32, calibration))
            source = {"calibration_pairs": len(calibration)}
        quantize_int8(graph, dst, per_tensor_nodes=weight_matmuls(graph), activation_ranges=ranges)
        return {"scheme": "static", "activation_scales": "static", **source}
    batches = calibration_batches(fp32, calibration)
    plan = plan_mixed(graph, batches, max_loss)
    quantize_int8(graph, dst, per_tensor_nodes=plan.per_tensor_nodes, activation_ranges=plan.activation_ranges)
    return {**plan.to_json(), "calibration_pairs": len(calibration)}


def int8_parity(int8: BundleModel, fp32: BundleModel, dev: list[Pair], checkpoint: Path, meta: dict,
                scheme: str) -> dict:
    """The INT8 graph against its reference on dev (:func:`export.parity.compare_labels`).

    The reference is the fp32 graph, except for a quantisation-aware checkpoint exported with the
    static scheme: then it is the fake-quantised model that checkpoint was trained and selected as,
    and agreement with the latent fp32 weights is recorded beside it.
    """
    queries, services = [p.query for p in dev], [p.service for p in dev]
    p8, p32 = int8.predict_probs(queries, services), fp32.predict_probs(queries, services)
    if not ("quant_aware" in meta and scheme == "static"):
        return compare_labels(p32, p8, dev)
    from training.quantization_aware import simulated_model

    simulated = replace(fp32, backend=TorchBackend(simulated_model(checkpoint, meta))).predict_probs(queries, services)
    return {**compare_labels(simulated, p8, dev, "quant-aware simulation"),
            "int8_label_agreement_with_fp32": label_agreement(p32, p8)}


def export_bundle(cfg: ExportConfig) -> Path:
    """Export ``cfg.checkpoint`` to the bundle folder ``cfg.out`` and return it.

    ``ship`` lists the precisions kept in the final bundle (default: all exported). The fp32 graph is
    always built because it is the parity reference, but a CPU bundle can ship INT8 alone (a quarter
    of the size); the manifest still records the fp32 parity numbers.

    ``int8_scheme``: ``blockwise`` (every MatMul block-wise 8-bit), ``static`` (every MatMul takes the
    ~2x faster per-tensor kernel with activation scales calibrated on ``calibration_pairs`` seeded pairs
    of ``calibration_split``; passes the gate after quantisation-aware fine-tuning,
    :mod:`training.quantization_aware`) or ``mixed`` (only the MatMuls that tolerate it go per-tensor,
    chosen on the calibration pairs by :func:`export.mixed_precision.plan_mixed`). Dev stays the gate's.
    The checkpoint's ``training`` record (how its model was trained) is copied into ``bundle.json``.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.student import read_student_meta

    checkpoint, out, data = Path(cfg.checkpoint), Path(cfg.out), cfg.data
    precisions, ship, default_precision, int8_scheme = cfg.precisions, cfg.ship, cfg.default_precision, cfg.int8_scheme
    test_split = cfg.test_split or None
    meta = read_student_meta(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint), attn_implementation="eager").eval()
    labels = tuple(meta.get("labels", LABELS))
    if model.config.num_labels != len(labels):
        raise ValueError(f"{checkpoint} has {model.config.num_labels} outputs but the label scale has {len(labels)}")

    with staged_bundle(out) as staging:
        raw = export_onnx(model, staging / "raw.onnx", cfg.opset)
        fused_ops = fuse_bert(
            raw, staging / GRAPH_FILES["fp32"], model.config.num_attention_heads, model.config.hidden_size
        )
        raw.unlink()
        AutoTokenizer.from_pretrained(str(checkpoint)).backend_tokenizer.save(str(staging / "tokenizer.json"))
        fields = dict(
            name=cfg.name,
            version=cfg.version or datetime.now(timezone.utc).strftime("%Y.%m.%d-%H%M%S"),
            labels=labels,
            gains=tuple(DEFAULT_GAINS),
            ratings=tuple(meta.get("class_ratings", DEFAULT_RATINGS)),
            max_length=int(meta.get("max_length", 64)),
            text=ServiceTextTemplate(**meta.get("text", {})),
            default_precision=default_precision,
            opset=cfg.opset,
            source_checkpoint=str(checkpoint),
            training=meta.get("training", {}),
        )
        # an fp32-only manifest first, so the fp32 graph can score calibration pairs through the serving path
        write_manifest(staging, [GraphEntry(path=GRAPH_FILES["fp32"], precision="fp32")], [],
                       **{**fields, "default_precision": "fp32"})
        quantization = {}
        if "int8" in precisions:
            calibration = []
            if int8_scheme != "blockwise":
                pool = load_pairs(data, cfg.calibration_split)
                calibration = random.Random(0).sample(pool, min(cfg.calibration_pairs, len(pool)))
            quantization = build_int8(BundleModel.load(load_bundle(staging), "fp32"), staging / GRAPH_FILES["int8"],
                                      int8_scheme, calibration, cfg.calibration_max_loss, meta)
        if "fp16" in precisions:
            convert_fp16(staging / GRAPH_FILES["fp32"], staging / GRAPH_FILES["fp16"])
        # undo the fusions whose CPU kernels are slow, after calibration so it read the graph it quantised
        graphs = rewrite_graphs(staging, tuple(GraphEntry(path=GRAPH_FILES[p], precision=p) for p in precisions))
        fields["quantization"] = quantization
        write_manifest(staging, graphs, [], **fields)
        bundle = load_bundle(staging)

        dev = load_pairs(data, cfg.dev_split)
        # each runnable graph loaded once for all checks (fp16 graphs are for GPUs; not run here)
        graphs_run = {p: BundleModel.load(bundle, p) for p in precisions if p != "fp16"}
        fp32 = graphs_run["fp32"]
        parity: dict = {"fp32_max_abs_logit_diff": logit_diff(TorchBackend(model), fp32, dev[:cfg.parity_samples]),
                        "fp32_pairs": min(cfg.parity_samples, len(dev)), "fused_operators": json.dumps(fused_ops)}
        for precision, loaded in sorted(graphs_run.items()):
            parity[f"{precision}_batched_vs_alone_max_logit_diff"] = batch_diff(loaded, dev[:BATCH_CHECK_PAIRS])
        if "int8" in graphs_run:
            parity |= int8_parity(graphs_run["int8"], fp32, dev, checkpoint, meta, int8_scheme)
        check(parity, cfg.limits)

        served = graphs_run.get(default_precision) or BundleModel.load(bundle, default_precision)
        evaluation = bundle_evaluation(served, dev, data, test_split, cfg.dev_split)
        for p in set(precisions) - set(ship):
            (staging / GRAPH_FILES[p]).unlink()
        shipped = [g for g in graphs if g.precision in ship]
        write_manifest(staging, shipped, [], **fields, evaluation=evaluation, parity=parity)
    return out


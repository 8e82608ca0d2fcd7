"""Accuracy-driven INT8: per-MatMul sensitivity, the block-wise/per-tensor plan, and export with it."""

from __future__ import annotations

from collections import Counter

import onnx

from export.config import ExportConfig
from export.mixed_precision import calibration_batches, plan_mixed, probabilities, total_variation
from export.pipeline import export_bundle
from export.transforms import quantize_int8, weight_matmuls
from relevance.bundle import load_bundle
from relevance.data import load_pairs
from relevance.model import BundleModel


def _ops(graph) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(graph)).graph.node)


def _calibration(tiny_bundle, catalog_jsonl):
    model = BundleModel.load(load_bundle(tiny_bundle), "fp32", intra_op_threads=1)
    return model.bundle.graph_path("fp32"), calibration_batches(model, load_pairs(catalog_jsonl, "train")[:96], 32)


def test_total_variation_by_hand():
    import numpy as np

    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    q = np.array([[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]])
    assert total_variation(p, q) == 0.25  # (0.5 + 0) / 2 pairs


def test_per_tensor_nodes_get_the_fast_kernel_and_the_rest_stay_block_wise(tiny_bundle, tmp_path):
    fp32 = tiny_bundle / "model.onnx"
    nodes = weight_matmuls(fp32)
    assert nodes and all("/encoder/" in n for n in nodes)
    graph = quantize_int8(fp32, tmp_path / "mixed.onnx", per_tensor_nodes=nodes[:2])
    ops = _ops(graph)
    assert ops["MatMulInteger"] == 2 and ops["MatMulNBits"] == len(nodes) - 2
    assert ops["QEmbedLayerNormalization"] == 1
    plain = [n.name for n in onnx.load(str(graph)).graph.node if n.op_type == "MatMul"]
    assert not [n for n in plain if "/encoder/" in n], f"encoder projections left in fp32: {plain}"


def test_plan_stops_at_the_first_count_that_reaches_the_target(tiny_bundle, catalog_jsonl):
    fp32, batches = _calibration(tiny_bundle, catalog_jsonl)
    nodes = weight_matmuls(fp32)
    loose = plan_mixed(fp32, batches, max_loss=1.0, threads=1)
    assert loose.block_wise_nodes == [] and sorted(loose.per_tensor_nodes) == sorted(nodes)
    assert loose.tried == [(0, loose.calibration_agreement)]
    assert set(loose.sensitivity) == set(nodes) and all(s >= 0 for s in loose.sensitivity.values())

    impossible = plan_mixed(fp32, batches, max_loss=-1.0, threads=1, steps=(0, 2))
    assert impossible.per_tensor_nodes == [] and [k for k, _ in impossible.tried] == [0, 2, len(nodes)]
    assert impossible.calibration_agreement == impossible.block_wise_agreement
    # block-wise nodes are the most sensitive ones first
    ranked = sorted(impossible.sensitivity, key=impossible.sensitivity.get, reverse=True)
    assert impossible.block_wise_nodes == ranked


def test_export_with_the_mixed_scheme_records_its_plan(tiny_checkpoint, catalog_jsonl, tmp_path):
    from tests.conftest import TINY_LIMITS

    out = export_bundle(ExportConfig(checkpoint=str(tiny_checkpoint), out=str(tmp_path / "mixed"),
                                     data=str(catalog_jsonl), test_split="", **TINY_LIMITS, int8_scheme="mixed",
                                     calibration_split="train", calibration_pairs=64, calibration_max_loss=1.0))
    m = load_bundle(out).manifest
    assert m.quantization["scheme"] == "mixed" and m.quantization["calibration_pairs"] == 64
    ops = _ops(out / "model.int8.onnx")
    assert ops["MatMulNBits"] == len(m.quantization["block_wise_nodes"])
    assert ops["MatMulIntegerToFloat"] == m.quantization["per_tensor_matmuls"]
    # the gate still judges the mixed graph on dev
    assert "int8_label_agreement" in m.parity
    assert probabilities(out / "model.int8.onnx", calibration_batches(
        BundleModel.load(load_bundle(out), "int8"), load_pairs(catalog_jsonl, "dev")[:8])).shape == (8, 3)

"""Quantisation-aware fine-tuning: the fake quantisation matches the exported static INT8 graph, and a
short run yields a plain checkpoint that exports with ``--int8-scheme static``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from export.config import ExportConfig
from export.pipeline import export_bundle
from relevance.bundle import load_bundle
from relevance.data import load_pairs
from tests.conftest import TINY_LIMITS
from training.config import QuantAwareConfig, StudentTrainConfig
from training.quantization_aware import (
    FAKE_QUANT,
    FakeQuantLinear,
    calibrate_input_ranges,
    fake_quant_activation,
    fake_quant_table,
    fake_quant_weight,
    onnx_input_ranges,
    prepare_fake_quant,
    projections,
    quantization,
    train_quant_aware,
)
from training.student import encode_pairs, load_student, predict_logits, start_run


def test_weight_fake_quant_by_hand():
    w = torch.tensor([[1.27, -0.5, 0.004], [0.0, 2.54, -2.54]])
    q = fake_quant_weight(w)
    # row scales 0.01 and 0.02: 0.004 rounds to 0, -0.5 stays on the grid
    torch.testing.assert_close(q, torch.tensor([[1.27, -0.5, 0.0], [0.0, 2.54, -2.54]]))


def test_activation_fake_quant_matches_onnx_quantize_dequantize():
    x = torch.tensor([-1.5, -1.0, 0.0, 0.013, 2.9, 3.0, 7.0])
    q = fake_quant_activation(x, -1.0, 3.0)
    scale, zero = 4 / 255, 64
    expected = (np.clip(np.round(x.numpy() / scale) + zero, 0, 255) - zero) * scale  # QuantizeLinear + Dequantize
    np.testing.assert_allclose(q.numpy(), expected, atol=1e-6)
    assert q[0] == pytest.approx(-64 * scale) and q[-1] == pytest.approx((255 - 64) * scale)  # clipped to the range


def test_table_fake_quant_spans_zero_like_onnx_runtime():
    gain = torch.tensor([0.2, 0.5, 1.02])  # all positive: the uint8 range is [0, 1.02], zero point 0
    np.testing.assert_allclose(fake_quant_table(gain).numpy(), np.round(gain.numpy() / (1.02 / 255)) * (1.02 / 255),
                               atol=1e-7)


def test_straight_through_gradient():
    x = torch.tensor([0.3, 0.71], requires_grad=True)
    fake_quant_activation(x, 0.0, 1.0).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones(2))


def _calibrated(tiny_checkpoint, catalog_jsonl):
    cfg = StudentTrainConfig(data=str(catalog_jsonl), init=str(tiny_checkpoint), max_length=32,
                             text_fields=("title", "brand", "description"), threads=1)
    run = start_run(cfg)
    data = encode_pairs(run.encoder, run.template, load_pairs(catalog_jsonl, "train")[:64])
    model = load_student(tiny_checkpoint).eval()
    return run, data, model


def test_switching_quantisation_off_gives_the_plain_model(tiny_checkpoint, catalog_jsonl):
    run, data, model = _calibrated(tiny_checkpoint, catalog_jsonl)
    plain = predict_logits(model, run.encoder, data)
    prepare_fake_quant(model, calibrate_input_ranges(model, run.encoder, data))
    assert len(projections(model)) == 6 * model.config.num_hidden_layers
    assert all(isinstance(m, FakeQuantLinear) for m in projections(model).values())
    assert sum(isinstance(m, FAKE_QUANT) for m in model.modules()) == len(projections(model)) + 4  # 3 tables + LN
    with quantization(model, False):
        np.testing.assert_allclose(predict_logits(model, run.encoder, data), plain, atol=1e-6)
    assert not np.allclose(predict_logits(model, run.encoder, data), plain, atol=1e-6)


def test_short_run_exports_as_the_static_int8_graph(tiny_checkpoint, catalog_jsonl, tmp_path):
    cfg = QuantAwareConfig(data=str(catalog_jsonl), out=str(tmp_path / "qat"), init=str(tiny_checkpoint),
                           train_split="train", max_length=32, text_fields=("title", "brand", "description"),
                           batch_size=16, epochs=1, lr=1e-4, head_lr=1e-4, limit_train=96, evals_per_epoch=1,
                           threads=1, calibration_pairs=64)
    report = train_quant_aware(cfg)
    assert {"kl_int8", "kl_fp32", "label"} <= set(report["history"][-1])
    meta = json.loads((tmp_path / "qat" / "best" / "student.json").read_text())
    assert meta["quant_aware"]["from"] == str(tiny_checkpoint)
    # the record names the method and nests how the starting checkpoint was trained
    assert meta["training"]["method"].startswith("quantisation-aware") and meta["training"]["init"] == str(tiny_checkpoint)
    assert meta["training"]["from"]["method"] == "human labels"
    out = export_bundle(ExportConfig(checkpoint=str(tmp_path / "qat" / "best"), out=str(tmp_path / "bundle"),
                                     data=str(catalog_jsonl), test_split="", **TINY_LIMITS, int8_scheme="static",
                                     calibration_split="train", calibration_pairs=64))
    m = load_bundle(out).manifest
    assert m.quantization == {"scheme": "static", "activation_scales": "static",
                              "activation_ranges_from": "quant-aware checkpoint"}
    assert len(meta["quant_aware"]["input_ranges"]) == 6 * 2  # 2 tiny layers x 6 projections
    # gated against the simulation it was selected as; agreement with its latent fp32 weights is recorded
    assert m.parity["int8_reference"] == "quant-aware simulation"
    assert 0 <= m.parity["int8_label_agreement_with_fp32"] <= 1
    assert m.parity["int8_batched_vs_alone_max_logit_diff"] <= 1e-4


def test_simulation_matches_the_exported_static_graph(tiny_bundle, tiny_checkpoint, catalog_jsonl, tmp_path):
    """Fake quantisation must train against what export ships: same ranges, near-identical logits."""
    import onnx

    from export.mixed_precision import calibration_batches, matmul_input_ranges
    from export.transforms import quantize_int8, weight_matmuls
    from relevance.backends import OnnxBackend
    from relevance.model import BundleModel

    run, data, model = _calibrated(tiny_checkpoint, catalog_jsonl)
    torch_ranges = calibrate_input_ranges(model, run.encoder, data)
    served = BundleModel.load(load_bundle(tiny_bundle), "fp32", intra_op_threads=1)
    fp32 = served.bundle.graph_path("fp32")
    batches = calibration_batches(served, data.pairs, 16)
    onnx_ranges = matmul_input_ranges(fp32, batches, 1)
    inputs = {n.name: n.input[0] for n in onnx.load(str(fp32)).graph.node}
    by_node = onnx_input_ranges({"quant_aware": {"input_ranges": torch_ranges}})
    assert len(by_node) == len(torch_ranges) and set(by_node) <= set(inputs)
    for node, (low, high) in by_node.items():
        assert onnx_ranges[inputs[node]] == pytest.approx((low, high), abs=1e-4)

    graph = quantize_int8(fp32, tmp_path / "static.onnx", per_tensor_nodes=weight_matmuls(fp32),
                          activation_ranges=onnx_ranges)
    backend = OnnxBackend(graph, intra_op_threads=1)
    shipped = np.concatenate([backend.predict(b) for b in batches])
    reference = np.concatenate([OnnxBackend(fp32, intra_op_threads=1).predict(b) for b in batches])
    prepare_fake_quant(model, torch_ranges)
    order = np.argsort([len(ids) for ids, _ in data.examples], kind="stable")
    simulated = predict_logits(model, run.encoder, data)[order]
    quantisation_effect = np.abs(shipped - reference).max()
    assert quantisation_effect > 0
    assert np.abs(simulated - shipped).max() < 0.25 * quantisation_effect

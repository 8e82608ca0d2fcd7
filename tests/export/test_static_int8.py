"""Static per-tensor INT8: calibrated ranges over real tokens, frozen scales, batch-invariant scores."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest

from export.activation_ranges import activation_ranges, real_token_values
from export.config import ParityLimits
from export.mixed_precision import calibration_batches, matmul_input_ranges
from export.parity import ParityError, batched_vs_alone, check
from export.transforms import quantize_int8, quantize_per_tensor, weight_matmuls
from relevance.backends import OnnxBackend
from relevance.backends.onnxruntime import EXACT_INT8_KEY
from relevance.bundle import load_bundle
from relevance.data import load_pairs
from relevance.model import BundleModel
from relevance.quantization import uint8_scale_zero_point


@pytest.fixture(scope="module")
def calibration(tiny_bundle, catalog_jsonl):
    model = BundleModel.load(load_bundle(tiny_bundle), "fp32", intra_op_threads=1)
    pairs = load_pairs(catalog_jsonl, "train")[:64]
    return model, calibration_batches(model, pairs, 16), pairs


def test_uint8_scale_and_zero_point_by_hand():
    scale, zero = uint8_scale_zero_point(-1.0, 3.0)
    assert scale == pytest.approx(4 / 255) and zero == 64  # round(1 / (4/255)) = round(63.75)
    assert uint8_scale_zero_point(0.0, 2.55) == (pytest.approx(0.01), 0)


def test_real_token_values_drop_padding_positions():
    values = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(real_token_values(values, mask), [[0, 1], [2, 3], [6, 7]])


def test_ranges_see_only_real_tokens(calibration):
    model, _, pairs = calibration
    tensor = sorted({n.input[0] for n in onnx.load(str(model.bundle.graph_path("fp32"))).graph.node
                     if n.name in set(weight_matmuls(model.bundle.graph_path("fp32")))})[0]
    examples = model.encode([p.query for p in pairs[:8]], [p.service for p in pairs[:8]])
    padded = activation_ranges(model.bundle.graph_path("fp32"), [tensor], [model.encoder.pad(examples)], 1)
    alone = activation_ranges(model.bundle.graph_path("fp32"), [tensor], [model.encoder.pad([e]) for e in examples], 1)
    np.testing.assert_allclose(padded[tensor], alone[tensor], rtol=1e-5, atol=1e-6)


def test_static_graph_scores_a_pair_the_same_in_any_batch(calibration, tmp_path):
    model, batches, _ = calibration
    fp32 = model.bundle.graph_path("fp32")
    nodes = weight_matmuls(fp32)
    graph = quantize_int8(fp32, tmp_path / "static.onnx", per_tensor_nodes=nodes,
                          activation_ranges=matmul_input_ranges(fp32, batches, 1))
    ops = Counter(n.op_type for n in onnx.load(str(graph)).graph.node)
    assert ops["DynamicQuantizeLinear"] == 0 and ops["QuantizeLinear"] > 0
    # one fused integer kernel per MatMul (no Cast/Mul chain left behind), none block-wise
    assert ops["MatMulIntegerToFloat"] == len(nodes) and ops["MatMulInteger"] == 0 and ops["MatMulNBits"] == 0
    backend = OnnxBackend(graph, intra_op_threads=1)
    assert batched_vs_alone(backend, _mixed_batch(model)) <= 1e-5
    # exact integer arithmetic on AVX2 CPUs without VNNI too (ORT's default kernel saturates there);
    # tests/training/test_quantization_aware.py's simulation match fails on such a CPU without it
    assert backend.session.get_session_options().get_session_config_entry(EXACT_INT8_KEY) == "1"


def _mixed_batch(model: BundleModel) -> dict[str, np.ndarray]:
    examples = model.encode(["a", "angle bracket for decking joists"], [{"title": "x"}, {"title": "simpson strong-tie 12-gauge angle"}])
    assert len(examples[0][0]) < len(examples[1][0])
    return model.encoder.pad(examples)


def test_freezing_needs_a_range_for_every_quantised_input(calibration, tmp_path):
    model, _, _ = calibration
    fp32 = model.bundle.graph_path("fp32")
    with pytest.raises(ValueError, match="no calibrated activation range"):
        quantize_per_tensor(fp32, tmp_path / "x.onnx", only=weight_matmuls(fp32)[:1], activation_ranges={})


def test_gate_refuses_a_graph_whose_scores_depend_on_the_batch():
    parity = {"fp32_max_abs_logit_diff": 0.0, "int8_batched_vs_alone_max_logit_diff": 0.2}
    with pytest.raises(ParityError, match="int8 logits of a pair change by 2.00e-01 between a batch and alone"):
        check(parity, ParityLimits())
    check({**parity, "int8_batched_vs_alone_max_logit_diff": 1e-6}, ParityLimits())


def test_fused_integer_matmuls_score_like_the_unfused_chain(calibration, tmp_path):
    from export.transforms import freeze_activation_scales

    model, batches, _ = calibration
    fp32 = model.bundle.graph_path("fp32")
    ranges = matmul_input_ranges(fp32, batches, 1)
    graphs = {}
    for fuse in (False, True):
        path = quantize_per_tensor(fp32, tmp_path / f"fuse{fuse}.onnx", only=weight_matmuls(fp32))
        graphs[fuse] = freeze_activation_scales(path, ranges, fuse=fuse)
    ops = {fuse: Counter(n.op_type for n in onnx.load(str(g)).graph.node) for fuse, g in graphs.items()}
    assert ops[False]["MatMulInteger"] == ops[True]["MatMulIntegerToFloat"] == len(weight_matmuls(fp32))
    assert ops[True]["MatMulInteger"] == 0 and ops[True]["Cast"] < ops[False]["Cast"]
    batch = _mixed_batch(model)
    np.testing.assert_allclose(OnnxBackend(graphs[True], intra_op_threads=1).predict(batch),
                               OnnxBackend(graphs[False], intra_op_threads=1).predict(batch), atol=1e-5)


def test_the_gate_checks_the_graphs_own_numbers_not_the_source_bundles_it_carries():
    """An optimised bundle's parity keeps its source's gate numbers as ``source_...``: recorded, not regated."""
    passing = {"int8_label_agreement": 0.995, "int8_dev_macro_f1_drop": 0.001}
    check({**passing, "source_int8_label_agreement": 0.5, "source_int8_dev_macro_f1_drop": 0.2}, ParityLimits())
    with pytest.raises(ParityError, match="FP32 agrees with"):
        check({**passing, "fp32_label_agreement": 0.5, "fp32_dev_macro_f1_drop": 0.0}, ParityLimits())

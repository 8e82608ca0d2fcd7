"""The static INT8 graph in standard QDQ operators, and bundles served by OpenVINO (``relevance optimize --engine openvino``)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from export.config import OptimizeConfig
from export.optimize import optimize_bundle
from export.qdq import qdq_graph
from relevance.backends import OnnxBackend
from relevance.bundle import load_bundle
from relevance.data import load_pairs
from relevance.model import BundleModel

LOOSE = {"test_split": "", "min_agreement": 0.9, "max_f1_drop": 0.05}  # the tiny model's near-ties, as TINY_LIMITS


@pytest.fixture(scope="module")
def qdq(static_bundle, tmp_path_factory):
    return qdq_graph(load_bundle(static_bundle).graph_path("int8"), tmp_path_factory.mktemp("qdq") / "model.onnx")


def _dev_batches(model: BundleModel, catalog_jsonl) -> list[dict[str, np.ndarray]]:
    pairs = load_pairs(catalog_jsonl, "dev")
    examples = model.encode([p.query for p in pairs], [p.service for p in pairs])
    return [model.encoder.pad(examples[i : i + 16]) for i in range(0, len(examples), 16)]


def test_the_qdq_graph_is_standard_operators_with_the_source_quantisation(static_bundle, qdq):
    source = onnx.load(str(load_bundle(static_bundle).graph_path("int8")))
    graph = onnx.load(str(qdq))
    assert {n.domain for n in graph.graph.node} <= {"", "ai.onnx"}
    ops = Counter(n.op_type for n in graph.graph.node)
    matmuls = [n for n in source.graph.node if n.op_type == "MatMulIntegerToFloat"]
    # a weight DequantizeLinear per INT8 MatMul and per embedding table, a Q/DQ pair per distinct MatMul input
    inputs = {n.input[0] for n in matmuls}
    assert ops["DequantizeLinear"] == len(matmuls) + 3 + len(inputs) and ops["QuantizeLinear"] == len(inputs)
    src = {i.name: numpy_helper.to_array(i) for i in source.graph.initializer}
    out = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    for node in matmuls:  # the very int8 weights and scales, activation scales and zero points
        for name in (node.input[1], node.input[2], node.input[3], node.input[4]):
            np.testing.assert_array_equal(out[name], src[name])
    # no float weight matrix left but the pooler's and the classifier's, float in the source graph too
    floats = sorted(n for n, a in out.items() if a.dtype == np.float32 and a.ndim == 2)
    assert floats == ["bert.pooler.dense.weight", "classifier.weight"]
    assert {"bert.pooler.dense.weight_Transposed", "classifier.weight_Transposed"} <= set(src)
    assert qdq.stat().st_size < 1.5 * load_bundle(static_bundle).graph_path("int8").stat().st_size


def test_the_qdq_graph_scores_like_the_source_graph(static_bundle, qdq, catalog_jsonl):
    model = BundleModel.load(load_bundle(static_bundle), "int8", intra_op_threads=1)
    batches = _dev_batches(model, catalog_jsonl)
    rewritten = OnnxBackend(qdq, intra_op_threads=1)
    source = np.concatenate([model.backend.predict(b) for b in batches])
    standard = np.concatenate([rewritten.predict(b) for b in batches])
    assert (source.argmax(1) == standard.argmax(1)).mean() >= 0.97
    assert np.abs(source - standard).max() < 0.1 * np.abs(source).max()


def test_optimize_for_openvino_serves_the_gated_graph_on_openvino(static_bundle, catalog_jsonl, tmp_path):
    pytest.importorskip("openvino")
    from relevance.backends import OpenVinoBackend

    out = optimize_bundle(OptimizeConfig(bundle=str(static_bundle), out=str(tmp_path / "ov"), version="0.0.2-ov",
                                         engine="openvino", data=str(catalog_jsonl), **LOOSE))
    bundle = load_bundle(out)
    entry = bundle.manifest.graph("int8")
    assert entry.engine == "openvino" and entry.disabled_optimizers == ()
    model = BundleModel.load(bundle)
    assert isinstance(model.backend, OpenVinoBackend)
    # gated against ONNX Runtime's scores of the source graph, and batch-invariant
    parity = bundle.manifest.parity
    assert parity["int8_reference"].endswith("int8 graph") and parity["int8_label_agreement"] >= 0.9
    assert parity["int8_batched_vs_alone_max_logit_diff"] <= 1e-3
    source = BundleModel.load(load_bundle(static_bundle), "int8", intra_op_threads=1)
    pairs = load_pairs(catalog_jsonl, "dev")[:32]
    probs = model.predict_probs([p.query for p in pairs], [p.service for p in pairs])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    reference = source.predict_probs([p.query for p in pairs], [p.service for p in pairs])
    assert (probs.argmax(1) == reference.argmax(1)).mean() >= 0.9


def test_optimize_for_openvino_refuses_a_graph_of_another_scheme(tiny_bundle, catalog_jsonl, tmp_path):
    with pytest.raises(ValueError, match="static INT8 BERT graph"):
        optimize_bundle(OptimizeConfig(bundle=str(tiny_bundle), out=str(tmp_path / "ov"), version="0.0.2-ov",
                                       engine="openvino", data=str(catalog_jsonl), **LOOSE))
    assert not (tmp_path / "ov").exists()

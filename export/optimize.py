"""``relevance optimize``: rewrite an existing bundle's graphs for faster CPU kernels, gated on dev.

A bundle outlives the runtime it was exported for: when a kernel rewrite
(:func:`export.cpu_kernels.rewrite_for_cpu`) makes the same weights run faster, a team wants the
new graph without retraining or even keeping the checkpoint. This takes a bundle folder, rewrites
each graph, and writes a new bundle (new version, same weights and tokenizer) only if every
rewritten graph scores like the graph it came from:

* an fp32 graph: max |logit difference| on 256 dev pairs <= ``max_abs_diff`` (float rounding only);
* an INT8 graph, on the dev split: label agreement >= ``min_int8_agreement`` and macro-F1 lost <= ``max_int8_f1_drop``
  (the INT8 gate's limits; a static INT8 graph can move an activation one quantisation step);
* batched vs alone: the rewritten graph must stay batch-invariant (``max_batch_diff``).

With ``engine="openvino"`` the INT8 graph is instead rewritten in standard operators with its
quantisation kept (:mod:`export.qdq`) and its entry names OpenVINO as the runtime that serves it;
the gate above then measures OpenVINO's scores against ONNX Runtime's on the same weights.

With ``max_length`` the new bundle also cuts pairs to fewer tokens than the source (its padded runs
are shorter where a request holds a long pair); that changes the scores of the pairs it cuts, so
every graph, fp32 included, is then gated like an INT8 one: label agreement with the source's graph
and macro-F1 lost on dev.

The source bundle's own parity numbers are kept with a ``source_`` prefix, the new gate's numbers
beside them, and both bundles' dev and test metrics are re-measured through the serving path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from export.config import OptimizeConfig
from export.cpu_kernels import rewrite_for_cpu
from export.parity import batch_diff, check, compare_labels, logit_diff
from relevance.bundle import GraphEntry, load_bundle
from relevance.bundle.writer import staged_bundle, write_manifest
from relevance.data import load_pairs
from relevance.evaluate import bundle_evaluation
from relevance.model import BundleModel

BATCH_CHECK_PAIRS = 32
FP32_CHECK_PAIRS = 256


def rewrite_graphs(root: Path, graphs: tuple[GraphEntry, ...]) -> list[GraphEntry]:
    """Split the slow fusions of every CPU graph under ``root`` in place; entries with the optimizers to
    disable. FP16 graphs are for GPUs, where the fused kernels are the fast ones: left alone."""
    rewritten = []
    for g in graphs:
        if g.precision == "fp16":
            rewritten.append(g)
            continue
        disabled = rewrite_for_cpu(root / g.path, root / g.path)
        rewritten.append(g.model_copy(update={"disabled_optimizers": tuple(sorted({*g.disabled_optimizers, *disabled}))}))
    return rewritten


def qdq_graphs(root: Path, graphs: tuple[GraphEntry, ...]) -> list[GraphEntry]:
    """Rewrite every INT8 graph under ``root`` in place as the QDQ graph OpenVINO serves (other graphs kept)."""
    from export.qdq import qdq_graph  # torch: the student is rebuilt from the graph's weights

    rewritten = []
    for g in graphs:
        if g.precision == "int8":
            qdq_graph(root / g.path, root / g.path)
            g = g.model_copy(update={"engine": "openvino", "disabled_optimizers": ()})
        rewritten.append(g)
    return rewritten


def optimize_bundle(cfg: OptimizeConfig) -> Path:
    """Write ``cfg.out``: ``cfg.bundle`` with rewritten graphs, only if they pass the gate (see above)."""
    src, out, data, version = Path(cfg.bundle), Path(cfg.out), cfg.data, cfg.version
    dev_split, test_split = cfg.dev_split, cfg.test_split or None
    source = load_bundle(src)
    m = source.manifest
    if out.resolve() == src.resolve():
        raise ValueError("write the optimised bundle to a new folder; the source is its parity reference")
    with staged_bundle(out) as staging:
        for name in m.files:
            shutil.copy2(src / name, staging / name)
        graphs = (qdq_graphs if cfg.engine == "openvino" else rewrite_graphs)(staging, m.graphs)
        fields = m.model_dump(exclude={"created", "graphs", "files", "version", "parity", "evaluation"})
        shortened = bool(cfg.max_length) and cfg.max_length != m.max_length
        if shortened:
            fields["max_length"] = cfg.max_length
        write_manifest(staging, graphs, [], **fields, version=version)
        rewritten = load_bundle(staging)

        dev = load_pairs(data, dev_split)
        queries, services = [p.query for p in dev], [p.service for p in dev]
        parity: dict = {f"source_{k}": v for k, v in m.parity.items()}
        parity["source_bundle"] = f"{m.name} {m.version} ({source.checksum})"
        if shortened:
            parity["source_max_length"] = m.max_length
        for g in graphs:
            if g.precision == "fp16":
                continue  # GPU graphs are not run here
            before, after = BundleModel.load(source, g.precision), BundleModel.load(rewritten, g.precision)
            reference = f"{m.name} {m.version} {g.precision} graph"
            if g.precision == "int8" or shortened:
                parity |= compare_labels(before.predict_probs(queries, services),
                                         after.predict_probs(queries, services), dev, reference, g.precision)
            else:  # a float graph: the rewrite may only move logits by rounding
                parity |= {"fp32_reference": reference,
                           "fp32_max_abs_logit_diff": logit_diff(before.backend, after, dev[:FP32_CHECK_PAIRS])}
            parity[f"{g.precision}_batched_vs_alone_max_logit_diff"] = batch_diff(after, dev[:BATCH_CHECK_PAIRS])
        check(parity, cfg.limits)

        evaluation = bundle_evaluation(BundleModel.load(rewritten), dev, data, test_split, dev_split)
        write_manifest(staging, graphs, [], **fields, version=version, evaluation=evaluation, parity=parity)
    return out

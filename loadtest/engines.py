"""Inference engines for the same student on this CPU: ONNX Runtime (what the bundles ship for) against OpenVINO.

    relevance loadtest engines --bundle models/default

A bundle ships ONNX Runtime's static INT8 graph, whose Microsoft contrib operators (QEmbedLayerNormalization,
MatMulIntegerToFloat, MultiHeadAttention) other engines cannot read. So the student is first rebuilt from
that graph's own weights (:mod:`export.rebuild`), and written two ways in standard operators: the QDQ
graph (:mod:`export.qdq`: the same INT8 weights and static activation scales, what ``relevance optimize
--engine openvino`` ships) and a plain fp32 graph of the dequantised weights. Rows:

* **ORT, the bundle's graph**: the served INT8 graph, set up as ``relevance serve`` sets it up (the baseline);
* **ORT, QDQ graph** and **ORT, rebuilt fp32 graph**: the standard graphs under ONNX Runtime;
* **OpenVINO, QDQ graph (as served)**: the bundle's quantisation on OpenVINO's INT8 kernels (AMX where
  the CPU has it), the rest in f32, as :class:`relevance.backends.OpenVinoBackend` serves it; then the
  same at the plugin's default precision (bf16 on CPUs with AMX or AVX-512 BF16, else f32);
* **OpenVINO, rebuilt fp32 graph**: the float graph at that default precision;
* **OpenVINO, NNCF INT8 of the fp32 graph**: OpenVINO's own post-training quantisation (transformer
  preset, seeded calibration pairs), not the scales quantisation-aware training learnt.

All score the same requests (``services`` test pairs each, length-sorted runs of ``max_run_pairs`` as the
batcher plans a lone request), timed interleaved request by request so a noisy neighbour slows them alike,
with the same intra-op threads; ONNX Runtime's threads do not spin between runs (as the service runs them),
OpenVINO's thread pool is its own. Each engine's dev macro-F1 and its label agreement with the bundle show
that a faster engine is not faster by being wrong. Issue 16 adds a second backend only where one
measures >= 1.3x the bundle's graph in one such run.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loadtest.config import EnginesConfig
from loadtest.raw import planned_batches, served_model, time_interleaved
from loadtest.report import cpu_description, write_marked_block
from loadtest.traffic import DataMissing, build_bodies, load_test_split, pairs_of
from relevance.backends import Backend, OnnxBackend, OpenVinoBackend
from relevance.bundle import Bundle, load_bundle
from relevance.data import load_pairs
from relevance.evaluate import evaluate_probabilities
from relevance.model import BundleModel
from service.settings import Settings

CPU_FLAGS = ("avx512_vnni", "amx_int8", "avx512_bf16")  # what decides which engine's INT8 is fast


def nncf_int8(graph: Path, batches: Sequence[dict[str, np.ndarray]], out: Path) -> Path:
    """``graph`` quantised by NNCF's post-training INT8 quantisation (transformer preset), as OpenVINO IR."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(graph))
    names = [i.get_any_name() for i in model.inputs]
    dataset = nncf.Dataset(list(batches), lambda b: {n: b[n] for n in names})
    quantized = nncf.quantize(model, dataset, model_type=nncf.ModelType.TRANSFORMER, subset_size=len(batches))
    ov.save_model(quantized, str(out))
    return out


@dataclass
class EngineRow:
    name: str
    precision: str
    pairs_per_s: float
    dev_macro_f1: float
    agreement: float  # dev labels equal to the bundle's


def engine_models(bundle: Bundle, workdir: Path, threads: int, calibration: list) -> dict[str, tuple[BundleModel, str]]:
    """Name -> (the bundle's encoder with that engine's backend, its inference precision), the bundle first."""
    from export.mixed_precision import calibration_batches
    from export.onnx_graph import export_onnx
    from export.qdq import qdq_graph
    from export.rebuild import student_from_int8_graph

    served = served_model(bundle, threads)
    source = bundle.graph_path(served.precision)
    plain = export_onnx(student_from_int8_graph(source), workdir / "rebuilt.onnx")
    qdq = qdq_graph(source, workdir / "qdq.onnx", plain)

    def model(backend: Backend) -> BundleModel:
        return BundleModel(bundle, served.encoder, backend, served.precision)

    models = {
        "ORT, the bundle's graph": (served, served.precision),
        "ORT, QDQ graph": (model(OnnxBackend(qdq, intra_op_threads=threads, allow_spinning=False)), "int8"),
        "ORT, rebuilt fp32 graph": (model(OnnxBackend(plain, intra_op_threads=threads, allow_spinning=False)), "fp32"),
    }
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError:
        print("openvino or nncf is not installed (pip install 'relevance-service[engines]'): its rows are skipped",
              file=sys.stderr)
        return models
    for name, graph, precision in (("OpenVINO, QDQ graph (as served)", qdq, "f32"),
                                   ("OpenVINO, QDQ graph, plugin's default precision", qdq, ""),
                                   ("OpenVINO, rebuilt fp32 graph", plain, "")):
        backend = OpenVinoBackend(graph, threads, precision, max_length=bundle.manifest.max_length)
        models[name] = (model(backend), f"int8 + {backend.inference_precision}" if graph == qdq
                        else backend.inference_precision)
    started = time.perf_counter()
    nncf_graph = nncf_int8(plain, calibration_batches(served, calibration, 32), workdir / "nncf.xml")
    print(f"NNCF quantisation: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    # unpadded: NNCF quantises the attention scores too, masked padding included, so its scores move
    # with the padding a run gets (the QDQ graph's do not: the gate checks batched against alone)
    backend = OpenVinoBackend(nncf_graph, threads, "", max_length=bundle.manifest.max_length, width_multiple=1)
    models["OpenVINO, NNCF INT8 of the fp32 graph"] = (model(backend), f"int8 + {backend.inference_precision}")
    return models


def run(cfg: EnginesConfig, command: str) -> int:
    """Time every engine on the same requests, check it on dev, write the table into ``cfg.out``; 2 without data."""
    bundle = load_bundle(cfg.bundle)
    try:
        bodies = build_bodies(load_test_split(Path(cfg.data)), cfg.services, cfg.requests)
        dev = load_pairs(cfg.data, cfg.dev_split)
        pool = load_pairs(cfg.data, cfg.calibration_split)
    except (DataMissing, FileNotFoundError) as err:
        print(f"engines need the real data: {err}", file=sys.stderr)
        return 2
    calibration = random.Random(0).sample(pool, min(cfg.calibration_pairs, len(pool)))
    run_pairs = cfg.run_pairs or Settings.model_construct().max_run_pairs
    with tempfile.TemporaryDirectory() as tmp:
        models = engine_models(bundle, Path(tmp), cfg.threads, calibration)
        quality, reference = {}, None
        for name, (model, _) in models.items():
            probs = model.predict_probs([p.query for p in dev], [p.service for p in dev])
            reference = probs.argmax(1) if reference is None else reference  # the bundle's graph comes first
            agreement = float((probs.argmax(1) == reference).mean())
            quality[name] = (evaluate_probabilities(model, dev, probs)["macro_f1"], agreement)
            print(f"{name}: dev macro-F1 {quality[name][0]:.4f}, agreement {quality[name][1]:.2%}", flush=True)
        requests = [pairs_of(b) for b in bodies]
        jobs = [(m.backend.predict, planned_batches(m, requests, run_pairs)) for m, _ in models.values()]
        rates, rounds = time_interleaved(jobs, cfg.seconds)
    rows = [EngineRow(name, precision, rate, *quality[name])
            for (name, (_, precision)), rate in zip(models.items(), rates, strict=True)]
    section = render(rows, bundle, cfg, command, run_pairs, rounds)
    print(section)
    if cfg.doc:
        write_marked_block(Path(cfg.doc), "engines", section)
    return 0


def render(rows: list[EngineRow], bundle: Bundle, cfg: EnginesConfig, command: str, run_pairs: int, rounds: int) -> str:
    m = bundle.manifest
    base = rows[0].pairs_per_s
    lines = ["| engine | runs at | pairs/s | vs the bundle's graph | dev macro-F1 | dev labels = bundle's |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r.name} | {r.precision} | {r.pairs_per_s:.0f} | {r.pairs_per_s / base:.2f}x | "
              f"{r.dev_macro_f1:.4f} | {r.agreement:.2%} |" for r in rows]
    return "\n".join([
        f"Command: `{command}`  ",
        f"Bundle: `{cfg.bundle}` ({m.name} {m.version}).  ",
        (f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cpu_description(CPU_FLAGS)}, {cfg.threads} threads per engine, "
        f"{cfg.requests} requests of {cfg.services} `test` services as sorted runs of {run_pairs}, interleaved, "
        f"{rounds} rounds (>= {cfg.seconds:.0f} s per engine); quality on all of `{cfg.dev_split}`; "
        f"NNCF calibrated on {cfg.calibration_pairs} seeded `{cfg.calibration_split}` pairs."),
        "",
        *lines,
        "",
        ("Every row runs the bundle's weights: the QDQ graph is its INT8 graph in standard operators (same int8 "
         "weights and activation scales, `export/qdq.py`), the fp32 graph its weights dequantised "
         "(`export/rebuild.py`); *runs at* is the precision the engine computes in."),
        "",
    ])

"""Bundles' quality against their speed, every number measured in one run.

    relevance loadtest pareto --bundles models/default,models/fast --doc docs/benchmarks.md

Per bundle, in the order given: its shape (encoder layers, hidden and feed-forward sizes read from the graph, max
length and INT8 scheme from the manifest), its quality on ``--split`` through the serving code path
(macro-F1, RMSE, NDCG@10), raw pairs/s of its engine on the same requests of ``--services`` test pairs
cut into sorted runs as the batcher plans them (the bundles timed in turn, request by request, so a
noisy neighbour slows them alike and the speed-ups hold; idle ORT threads do not spin, as in the service), and the latency of lone requests of that size through
``relevance serve`` (default settings, result cache off, each a new query, one at a time). Ratios are
against the first bundle. Run it on a quiet machine: the timings share the cores with anything else.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.config import ParetoConfig
from loadtest.plot import PlotUnavailable, pareto_plot
from loadtest.raw import planned_batches, served_model, time_interleaved
from loadtest.report import cpu_description, table, utc_now, write_json, write_marked_block
from loadtest.servers import lone_outcomes, max_run_pairs
from loadtest.traffic import DataMissing, build_bodies, load_test_split, pairs_of
from relevance.bundle import Bundle, load_bundle
from relevance.data import load_pairs
from relevance.evaluate import evaluate_bundle_model

SECTION = "pareto"  # the <!-- pareto begin --> ... <!-- pareto end --> block of --doc
SECTION_BEGIN, SECTION_END = f"<!-- {SECTION} begin -->", f"<!-- {SECTION} end -->"
PLOT_NAME = "pareto.png"


_LAYER = re.compile(r"/encoder/layer\.(\d+)/")


def graph_shape(graph: Path) -> dict[str, int | None]:
    """Encoder layers, hidden and feed-forward sizes of a BERT graph: attention nodes counted, the
    word-embedding table's width, the first intermediate bias's length (None where the graph does
    not say, or onnx is not installed)."""
    try:
        import onnx
    except ImportError:
        return {"layers": None, "hidden": None, "ffn": None}
    model = onnx.load(str(graph), load_external_data=False)
    # fused graphs have one attention node per layer; standard-operator ones (the QDQ graph) name them
    attention = {"Attention", "MultiHeadAttention", "QAttention"}
    layers = (sum(n.op_type in attention for n in model.graph.node)
              or len({m.group(1) for n in model.graph.node if (m := _LAYER.search(n.name))}) or None)
    hidden = next((int(t.dims[1]) for t in model.graph.initializer
                   if "word_embeddings" in t.name and len(t.dims) == 2), None)
    ffn = next((int(t.dims[0]) for t in model.graph.initializer
                if "intermediate.dense.bias" in t.name and len(t.dims) == 1), None)
    return {"layers": layers, "hidden": hidden, "ffn": ffn}


def describe(bundle: Path, b: Bundle) -> dict[str, Any]:
    m = b.manifest
    graph = next(g for g in m.graphs if g.precision == m.default_precision)
    return {
        "bundle": str(bundle),
        "name": f"{m.name} {m.version}",
        **graph_shape(bundle / graph.path),
        "max_length": m.max_length,
        "precision": m.default_precision,
        "int8_scheme": m.quantization.get("scheme", "n/a"),
        "engine": graph.engine,
        "size_mb": round((bundle / graph.path).stat().st_size / 2**20, 1),
    }


def lone_latency(bundle: Path, bodies: list[bytes], gap_s: float, log: Path) -> dict[str, float]:
    """Lone requests through a service started here: client p50/p90 and statuses."""
    outcomes = lone_outcomes(bundle, {0: bodies}, gap_s, log)[0]
    latencies = [o.latency_s * 1000 for o in outcomes]
    return {
        "lone_p50_ms": round(float(np.median(latencies)), 1),
        "lone_p90_ms": round(float(np.percentile(latencies, 90)), 1),
        "lone_all_200": all(o.status == 200 for o in outcomes),
    }


def measure(cfg: ParetoConfig, out: Path) -> list[dict[str, Any]]:
    by_query = load_test_split(Path(cfg.data))
    bodies = build_bodies(by_query, cfg.services, 64 + cfg.lone_requests + 3)
    raw_requests = [pairs_of(b) for b in bodies[:64]]
    lone_bodies = bodies[64:]
    run_pairs = max_run_pairs({})
    pairs = load_pairs(Path(cfg.data), cfg.split)
    rows, models = [], []
    for name in cfg.bundles:
        bundle = Path(name)
        loaded = load_bundle(bundle)  # checksums verified once; the model and the row share it
        row = describe(bundle, loaded)
        print(f"{bundle}: quality on {cfg.split} ({len(pairs)} pairs)", flush=True)
        # one session for quality and raw compute, set up as the service's: the bundles' runs alternate,
        # and spinning idle threads of one session would steal the cores from the next one's run
        model = served_model(loaded, cfg.threads)
        metrics = evaluate_bundle_model(model, pairs)
        row.update({"macro_f1": metrics["macro_f1"], "rmse": metrics["rmse"], "ndcg@10": metrics["ndcg@10"]})
        rows.append(row)
        models.append(model)
    # raw compute of every bundle interleaved request by request: the speed-ups come from one window
    jobs = [(m.backend.predict, planned_batches(m, raw_requests, run_pairs)) for m in models]
    rates, _ = time_interleaved(jobs, cfg.raw_seconds)
    for i, (row, rate) in enumerate(zip(rows, rates, strict=True)):
        row["raw_pairs_s"] = round(rate, 1)
        row.update(lone_latency(Path(row["bundle"]), lone_bodies, cfg.lone_gap_s, out / f"server-{i}.log"))
        print(f"{row['bundle']}: {row}", flush=True)
    base = rows[0]
    for row in rows:
        row["speedup"] = round(row["raw_pairs_s"] / base["raw_pairs_s"], 2)
        row["macro_f1_delta_pt"] = round(100 * (row["macro_f1"] - base["macro_f1"]), 2)
    return rows


def markdown(report: dict[str, Any], plot_link: str | None) -> str:
    cfg = report["config"]
    header = ["bundle", "layers", "hidden", "FFN", "max length", "INT8 scheme", "engine", "graph MB",
              f"{cfg['split']} macro-F1", "Δ pt", "RMSE", "NDCG@10", "raw pairs/s", "speed-up",
              f"lone {cfg['services']} p50 ms", "p90 ms"]

    def cell(v: Any) -> str:
        return "?" if v is None else str(v)

    rows = [[f"`{r['bundle']}` ({r['name']})", cell(r["layers"]), cell(r["hidden"]), cell(r.get("ffn")),
             r["max_length"],
             r["int8_scheme"], r.get("engine", "onnxruntime"), r["size_mb"], f"{r['macro_f1']:.4f}", f"{r['macro_f1_delta_pt']:+.2f}",
             f"{r['rmse']:.4f}", f"{r['ndcg@10']:.4f}", f"{r['raw_pairs_s']:.0f}", f"{r['speedup']:.2f}x",
             r["lone_p50_ms"], r["lone_p90_ms"]] for r in report["rows"]]
    lines = [f"Command: `{report['command']}`  ",
             f"Measured {report['date']} on {report['machine']}.", "",
             *table(header, "lrrrrllrrrrrrrrr", rows), "",
             (f"Quality: the whole `{cfg['split']}` split through the serving code path. Raw pairs/s: the "
             f"bundle's engine alone, set up as the service sets it up, on 64 requests of {cfg['services']} test pairs in sorted runs of "
             f"{report['max_run_pairs']}, {cfg['raw_seconds']:g} s per bundle. Lone: {cfg['lone_requests']} "
             f"requests of {cfg['services']} services through `relevance serve` (default settings, cache "
             "off, each a new query, one at a time, no header). Speed-up and Δ are against the first row.")]
    if plot_link:
        lines += ["", f"![test macro-F1 against raw pairs/s]({plot_link})"]
    return "\n".join(lines) + "\n"


def run(cfg: ParetoConfig, command: str) -> int:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        rows = measure(cfg, out)
    except DataMissing as err:
        print(err, file=sys.stderr)
        return 2
    report = {"command": command, "date": utc_now("%Y-%m-%d %H:%M UTC"), "machine": cpu_description(),
              "config": {"split": cfg.split, "services": cfg.services, "raw_seconds": cfg.raw_seconds,
                         "lone_requests": cfg.lone_requests},
              "max_run_pairs": max_run_pairs({}), "rows": rows}
    write_json(out / "report.json", report)
    png = None
    try:
        png = pareto_plot(rows, cfg.split, Path(cfg.doc).parent / "img" / PLOT_NAME if cfg.doc else out / PLOT_NAME)
    except PlotUnavailable as err:
        print(f"no plot: {err}", file=sys.stderr)
    link = None if png is None else (png.relative_to(Path(cfg.doc).parent).as_posix() if cfg.doc else png.name)
    text = markdown(report, link)
    (out / "report.md").write_text(text)
    if cfg.doc:
        write_marked_block(Path(cfg.doc), SECTION, text)
    print(text)
    return 0

"""The Pareto benchmark: the graph's shape, and a short end-to-end run that writes its table into a doc."""

from __future__ import annotations

import json

from loadtest.pareto import SECTION_BEGIN, SECTION_END, graph_shape
from relevance.bundle import load_bundle
from tests.loadtest.commands import relevance_loadtest


def test_the_shape_is_read_from_the_graph(tiny_bundle):
    m = load_bundle(tiny_bundle).manifest
    graph = next(g for g in m.graphs if g.precision == m.default_precision)
    # the 2-layer, hidden-64 test BERT with 128 feed-forward neurons per layer
    assert graph_shape(tiny_bundle / graph.path) == {"layers": 2, "hidden": 64, "ffn": 128}


def test_pareto_run_measures_every_bundle_and_rewrites_its_section(tiny_bundle, catalog_jsonl, tmp_path):
    doc = tmp_path / "bench.md"
    doc.write_text(f"# Benchmarks\n\n{SECTION_BEGIN}\nold table\n{SECTION_END}\n\n## Later\n")
    out = tmp_path / "out"
    args = ["--bundles", f"{tiny_bundle},{tiny_bundle}", "--data", str(catalog_jsonl),
            "--services", "4", "--raw-seconds", "0.2", "--lone-requests", "3", "--lone-gap-s", "0.01",
            "--out", str(out), "--doc", str(doc)]  # fmt: skip
    assert relevance_loadtest("pareto", args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["command"].startswith("relevance loadtest pareto ")
    rows = report["rows"]
    assert len(rows) == 2 and rows[0]["speedup"] == 1.0 and rows[0]["macro_f1_delta_pt"] == 0.0
    for row in rows:
        assert row["layers"] == 2 and row["raw_pairs_s"] > 0 and row["lone_all_200"]
        assert 0 <= row["macro_f1"] <= 1 and row["lone_p50_ms"] > 0
    # the model is deterministic: the same bundle scores the same twice
    assert rows[1]["macro_f1"] == rows[0]["macro_f1"]
    text = doc.read_text()
    assert "old table" not in text and text.count(SECTION_BEGIN) == 1 and text.endswith("## Later\n")
    assert "| layers |" in text and f"`{tiny_bundle}`" in text

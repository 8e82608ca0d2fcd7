"""The request-path benchmark: a short real run against the tiny bundle, every column measured."""

from __future__ import annotations

import json

from service.timing import PHASES
from tests.loadtest.commands import relevance_loadtest


def test_path_run_reports_compute_and_what_the_service_adds(tiny_bundle, catalog_jsonl, tmp_path):
    out = tmp_path / "out"
    args = ["--bundle", str(tiny_bundle), "--data", str(catalog_jsonl), "--sizes", "1,4", "--requests", "4",
            "--gap-s", "0.01", "--out", str(out)]
    assert relevance_loadtest("path", args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["command"].startswith("relevance loadtest path ")
    assert [r["services"] for r in report["rows"]] == [1, 4]
    for row in report["rows"]:
        assert row["all_200"]
        assert 0 < row["compute_ms"] < row["client_ms"] and row["split_ms"] > 0 and row["tokenise_ms"] > 0
        assert row["compute_hot_ms"] > 0
        # every phase of Server-Timing was read from the answers; inference is where the compute went
        assert set(row["phases_ms"]) == set(PHASES) and row["phases_ms"]["inference"] > 0
        assert sum(row["phases_ms"].values()) <= row["client_ms"] * 1.5
        # the server's own time sits inside what the client waited for
        assert 0 < row["server_ms"] <= row["client_ms"]
        assert row["beyond_compute_ms"] == round(row["client_ms"] - row["compute_ms"], 2)
        assert 0 < row["path_ms"] < row["client_ms"]
    text = (out / "report.md").read_text()
    assert "| services | tokenise ms |" in text and "| services | parse | admit | tokenize |" in text

"""The request-path benchmark: a short real run against the tiny bundle, every column measured."""

from __future__ import annotations

import json

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
        # the server's own time sits inside what the client waited for
        assert 0 < row["server_ms"] <= row["client_ms"]
        assert row["beyond_compute_ms"] == round(row["client_ms"] - row["compute_ms"], 2)
    assert "| services |" in (out / "report.md").read_text()

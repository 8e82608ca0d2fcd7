"""The throughput table (``relevance lab runtimes``) runs end to end on the tiny bundle and writes it (numbers not judged)."""

from __future__ import annotations

from typer.testing import CliRunner

from lab.runtimes import write_section
from relevance.cli import app


def test_runtimes_writes_a_table_with_all_runtimes(tiny_bundle, tiny_checkpoint, catalog_jsonl, tmp_path):
    out = tmp_path / "bench.md"
    args = ["lab", "runtimes", str(tiny_bundle), "--checkpoint", str(tiny_checkpoint), "--data", str(catalog_jsonl),
            "--batch-sizes", "1,4", "--batches", "2", "--min-seconds", "0.05", "--threads", "1", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "PyTorch eager fp32" in text and "ORT int8" in text and "ORT fp32" in text
    assert text.count("\n| 1 |") == 1 and text.count("\n| 4 |") == 1
    # the recorded command is the one that reproduces the table
    command = next(line for line in text.splitlines() if line.startswith("Command: `relevance lab runtimes "))
    assert f"runtimes {tiny_bundle} " in command  # the bundle first, as a reader writes it
    assert f"--checkpoint {tiny_checkpoint}" in command and f"--data {catalog_jsonl}" in command
    assert "--batch-sizes 1,4" in text and "--min-seconds 0.05" in text


def test_runtimes_says_when_data_is_missing(tiny_bundle, tmp_path):
    result = CliRunner().invoke(app, ["lab", "runtimes", str(tiny_bundle), "--data", str(tmp_path / "nothing"),
                                      "--out", str(tmp_path / "b.md")])
    assert result.exit_code == 2
    assert "benchmark needs real pairs" in result.stderr


def test_write_section_replaces_only_its_own_section(tmp_path):
    path = tmp_path / "b.md"
    write_section(path, "## A", "## A\n\nfirst\n")
    write_section(path, "## B", "## B\n\nother\n")
    write_section(path, "## A", "## A\n\nsecond\n")
    text = path.read_text()
    assert "second" in text and "first" not in text and "other" in text

"""The throughput benchmark runs end to end on the tiny bundle and writes its table (numbers not judged)."""

from __future__ import annotations

from export.bench import main, write_section


def test_bench_writes_a_table_with_all_runtimes(tiny_bundle, tiny_checkpoint, catalog_jsonl, tmp_path):
    out = tmp_path / "bench.md"
    code = main([str(tiny_bundle), "--checkpoint", str(tiny_checkpoint), "--data", str(catalog_jsonl),
                 "--batch-sizes", "1,4", "--batches", "2", "--min-seconds", "0.05", "--threads", "1", "--out", str(out)])
    assert code == 0
    text = out.read_text()
    assert "PyTorch eager fp32" in text and "ORT int8" in text and "ORT fp32" in text
    assert text.count("\n| 1 |") == 1 and text.count("\n| 4 |") == 1


def test_bench_says_when_data_is_missing(tiny_bundle, tmp_path, capsys):
    assert main([str(tiny_bundle), "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "b.md")]) == 2
    assert "benchmark needs real pairs" in capsys.readouterr().err


def test_write_section_replaces_only_its_own_section(tmp_path):
    path = tmp_path / "b.md"
    write_section(path, "## A", "## A\n\nfirst\n")
    write_section(path, "## B", "## B\n\nother\n")
    write_section(path, "## A", "## A\n\nsecond\n")
    text = path.read_text()
    assert "second" in text and "first" not in text and "other" in text

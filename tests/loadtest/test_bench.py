"""The benchmark stays runnable: its pieces, and a few-second smoke run against the tiny bundle."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from loadtest.engine import Outcome, Pool, RateResult, arrival_offsets
from loadtest.traffic import build_bodies, pairs_of
from tests.loadtest.commands import relevance_loadtest


def main(argv: list[str]) -> int:
    return relevance_loadtest("bench", argv)


def write_homedepot(folder: Path, queries: int = 12, per_query: int = 3) -> Path:
    """A tiny stand-in for the Home Depot folder (pairs.csv + splits.csv), every row in the test split."""
    folder.mkdir(parents=True, exist_ok=True)
    items = ["drill", "hammer", "primer", "hose", "faucet", "saw"]
    with open(folder / "pairs.csv", "w", newline="") as p, open(folder / "splits.csv", "w", newline="") as s:
        pw, sw = csv.writer(p), csv.writer(s)
        pw.writerow(["id", "product_uid", "product_title", "search_term", "relevance"])
        sw.writerow(["id", "split"])
        for q in range(queries):
            for k in range(per_query):
                row_id = q * per_query + k
                pw.writerow(
                    [
                        row_id,
                        1000 + row_id,
                        f"dewalt cordless {items[(q + k) % 6]} kit",
                        f"{items[q % 6]} {q}",
                        3,
                    ]
                )
                sw.writerow([row_id, "test"])
    return folder


def test_open_loop_schedule_and_statistics():
    uniform = arrival_offsets(10, 5, "uniform", 0)
    assert uniform == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])
    poisson = arrival_offsets(100, 2000, "poisson", 0)
    assert poisson == sorted(poisson) and 18 < poisson[-1] < 22  # about 2000 / 100 s
    res = RateResult(
        10, 32, [Outcome(0, 0.01 * i, 200) for i in range(1, 100)] + [Outcome(0, 0.001, 503)], wall_s=10
    )
    assert res.achieved_pairs_s == pytest.approx(99 * 32 / 10)
    assert res.percentile_ms(50) == pytest.approx(500)
    assert res.percentile_ms(99, count_failures=True) > 900  # the refusal counts as infinitely slow
    assert not res.meets(100) and res.failure_rate == pytest.approx(0.01)
    with pytest.raises(ValueError, match="loopback"):
        Pool("10.0.0.1", 80)


def test_bodies_have_exactly_n_services_with_the_query_own_products_first(tmp_path):
    from loadtest.traffic import load_test_split

    by_query = load_test_split(write_homedepot(tmp_path / "hd"))
    bodies = build_bodies(by_query, services=8, count=5)
    for body in bodies:
        query, titles = pairs_of(body)
        assert len(titles) == 8 and titles[:3] == [p["title"] for p in by_query[query]]


def test_missing_data_says_where_to_get_it(tiny_bundle, tmp_path, capsys):
    assert main(["--bundle", str(tiny_bundle), "--data", str(tmp_path / "nothing")]) == 2
    assert "--data" in capsys.readouterr().err


def test_smoke_run_writes_the_table(tiny_bundle, tmp_path, capsys):
    out = tmp_path / "bench.md"
    data = write_homedepot(tmp_path / "hd")
    code = main(
        [
            "--bundle",
            str(tiny_bundle),
            "--data",
            str(data),
            "--services",
            "8",
            "--rates",
            "40,80",
            "--duration",
            "0.5",
            "--warmup",
            "0.2",
            "--raw-seconds",
            "0.2",
            "--refine",
            "0",
            "--bodies",
            "10",
            "--pause",
            "0",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = out.read_text()
    # the command that reproduces the table
    assert f"relevance loadtest bench --data {data} --bundle {tiny_bundle} --services 8 --rates 40,80" in text
    assert f"--out {out}" in text
    assert text.count("| service |") == 2 and text.count("| naive |") == 2
    assert "service / raw compute" in text and "generator CPU" in text
    assert "as the batcher plans a lone request (sorted runs of 16)" in text
    assert "pairs/s" in capsys.readouterr().out


def test_raw_compute_times_padded_and_planned_runs_of_the_same_requests(tiny_bundle):
    from loadtest.raw import raw_compute_rate

    titles = ["x", "a much longer product title with many words in it", "mid size title", "y"] * 2
    raw = raw_compute_rate(tiny_bundle, [("angle bracket", titles)], None, 1, seconds=0.05, run_pairs=(2, 8))
    assert raw.pairs_per_s > 0 and set(raw.planned) == {2, 8}
    # sorted runs of 2 pad less than one padded batch; a run as big as the request pads the same
    assert raw.planned[2][1] < raw.padding_share and raw.planned[8][1] == pytest.approx(raw.padding_share)


def test_raw_cli_compares_run_sizes(tiny_bundle, tmp_path, capsys):
    def raw_main(argv: list[str]) -> int:
        return relevance_loadtest("raw", argv)

    assert raw_main(["--bundle", str(tiny_bundle), "--data", str(write_homedepot(tmp_path / "hd")),
                     "--services", "8", "--run-pairs", "2,8", "--seconds", "0.05", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "| one padded batch |" in out and "| sorted runs of 2 |" in out and "| sorted runs of 8 |" in out
    assert raw_main(["--bundle", str(tiny_bundle), "--data", str(tmp_path / "nothing")]) == 2


def _fake_rate(rate_pairs_s: float, meets: bool) -> RateResult:
    outcomes = [Outcome(0.0, 0.05, 200 if meets else 503) for _ in range(100)]
    return RateResult(rate_pairs_s / 8, 8, outcomes, wall_s=1.0)


def test_sweep_bisects_below_the_first_rate_when_even_it_misses():
    from loadtest.search import sweep

    measured = []

    def measure(rate: float) -> RateResult:
        measured.append(rate)
        return _fake_rate(rate, rate < 60)

    result = sweep("service", measure, [100, 200], 100.0, refine=2)
    assert measured == [100, 50, 75]  # 100 misses badly: bisect from zero, then between 50 and 100
    assert result.best(100.0).offered_pairs_s == 50


def test_summary_reports_the_service_against_the_queueing_ceiling_of_its_compute():
    from loadtest.bench import ratios
    from loadtest.queueing import max_utilisation
    from loadtest.raw import RawResult
    from loadtest.report import summary_lines
    from loadtest.search import Sweep

    raw = RawResult(pairs_per_s=300.0, batch_pairs=8, padding_share=0.4, precision="int8", runs=10,
                    planned={4: (400.0, 0.1)})
    service = Sweep("service", [_fake_rate(40.0, True)])
    r = ratios(raw, service, None, 100.0)
    ceiling = 400.0 * max_utilisation(8 / 400.0, 0.1)  # 20 ms per request of 8 pairs
    assert r["queueing_ceiling_pairs_s"] == pytest.approx(ceiling) and 0 < ceiling < 400.0
    assert r["service_vs_ceiling"] == pytest.approx(r["service_pairs_s"] / ceiling)
    lines = summary_lines(raw, r, False, 100.0)
    assert any(line.startswith("queueing ceiling at that compute rate") for line in lines)
    assert any(line.startswith("service / queueing ceiling: ") for line in lines)

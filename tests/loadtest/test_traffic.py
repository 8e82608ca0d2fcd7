"""Traffic of a scenario: Zipf popularity, service counts, buckets, shadow share, bodies and replies."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from loadtest.engine import Reply
from loadtest.scenario import parse_scenario
from loadtest.traffic import DataMissing, Discrete, Draw, Traffic, ZipfSampler, read_reply


def by_query(n: int = 200, per_query: int = 3) -> dict[str, list[dict[str, str]]]:
    return {
        f"query {q}": [{"id": f"{q}-{k}", "title": f"product {k} for query {q}"} for k in range(per_query)]
        for q in range(n)
    }


def test_zipf_popular_ranks_dominate():
    zipf = ZipfSampler(1000, 1.0)
    draws = zipf.sample(np.random.default_rng(0), 50_000)
    counts = np.bincount(draws, minlength=1000)
    assert draws.min() >= 0 and draws.max() < 1000
    # P(rank k) ~ 1/k: rank 0 about twice rank 1 and ten times rank 9
    assert counts[0] / counts[1] == pytest.approx(2, rel=0.1)
    assert counts[0] / counts[9] == pytest.approx(10, rel=0.2)
    # the top 1% of queries draw about 39% of requests (H_10 / H_1000), the bottom half under 10%
    assert counts[:10].sum() / draws.size == pytest.approx(zipf.top_share(10), abs=0.01)
    assert zipf.top_share(10) == pytest.approx(0.391, abs=0.002)
    assert counts[500:].sum() / draws.size < 0.1


def test_zipf_exponent_sets_the_skew():
    rng = np.random.default_rng(1)
    uniform = np.bincount(ZipfSampler(100, 0.0).sample(rng, 20_000), minlength=100)
    steep = np.bincount(ZipfSampler(100, 2.0).sample(rng, 20_000), minlength=100)
    assert uniform.max() / uniform.min() < 2  # exponent 0: every query alike
    assert steep[0] / 20_000 == pytest.approx(1 / sum(1 / k**2 for k in range(1, 101)), abs=0.02)


def test_discrete_follows_its_weights():
    draws = Counter(Discrete({8: 1.0, 32: 3.0}).sample(np.random.default_rng(0), 20_000))
    assert set(draws) == {8, 32} and draws[32] / 20_000 == pytest.approx(0.75, abs=0.02)


def test_draws_follow_the_scenario():
    scenario = parse_scenario(
        {
            "name": "t",
            "queries": {"pool": 50, "zipf_exponent": 1.2},
            "services": {4: 1, 16: 1},
            "buckets": {"a": 3, "": 1},
            "shadow_share": 0.2,
        }
    )
    traffic = Traffic(scenario, by_query())
    draws = traffic.draw(np.random.default_rng(0), 4000)
    assert len(traffic.queries) == 50 and max(d.rank for d in draws) < 50
    sizes, buckets = Counter(d.services for d in draws), Counter(d.bucket for d in draws)
    assert set(sizes) == {4, 16} and sizes[4] / 4000 == pytest.approx(0.5, abs=0.04)
    assert buckets["a"] / 4000 == pytest.approx(0.75, abs=0.03) and set(buckets) == {"a", ""}
    assert sum(d.shadow for d in draws) / 4000 == pytest.approx(0.2, abs=0.03)
    ranks = Counter(d.rank for d in draws)
    assert ranks[0] > ranks[1] > ranks[10]


def test_a_query_repeats_the_same_pairs():
    """A request for N services is the first N of the query's one candidate list: popular queries
    repeat exact (query, service) pairs, which is what the service's cache serves."""
    scenario = parse_scenario({"name": "t", "services": {2: 1, 5: 1}, "deadline_ms": 80, "seed": 3})
    traffic = Traffic(scenario, by_query())
    small, large = (json.loads(traffic.body(d)) for d in _draws(traffic, rank=7, sizes=(2, 5)))
    assert small["query"] == large["query"] == traffic.queries[7]
    assert len(small["services"]) == 2 and len(large["services"]) == 5
    assert large["services"][:2] == small["services"]
    own = [s["title"] for s in by_query()[traffic.queries[7]]]
    assert [s["title"] for s in large["services"][:3]] == own  # its own rated products first
    assert traffic.body(_draws(traffic, 7, (5,))[0]) is traffic.body(_draws(traffic, 7, (5,))[0])  # memoised
    assert Traffic(scenario, by_query()).queries == traffic.queries  # the seed fixes the ranking


def test_requests_carry_the_bucket_and_deadline_headers():
    scenario = parse_scenario({"name": "t", "deadline_ms": 80, "buckets": {"b": 1}})
    traffic = Traffic(scenario, by_query())
    (draw,) = traffic.draw(np.random.default_rng(0), 1)
    raw = traffic.request(draw, "/relevance/shadow", "127.0.0.1", 8000)
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /relevance/shadow HTTP/1.1\r\n")
    assert b"\r\nX-AB-Bucket: b" in head and b"\r\nX-Deadline-Ms: 80" in head
    assert body == traffic.body(draw)
    no_bucket = Traffic(parse_scenario({"name": "t"}), by_query())
    assert no_bucket.headers(no_bucket.draw(np.random.default_rng(0), 1)[0]) == {}


def test_with_changes_keeps_the_data_and_ranking_under_another_scenario():
    traffic = Traffic(parse_scenario({"name": "t", "deadline_ms": 80, "services": 8}), by_query())
    wide = traffic.with_changes(services=256, deadline_ms=None)
    assert wide.queries == traffic.queries and traffic.scenario.max_services == 8
    assert len(wide.candidates(3)) == 256 and wide.headers(Draw(3, 256, "", False)) == {}
    assert traffic.headers(Draw(3, 8, "", False)) == {"X-Deadline-Ms": "80"}


def test_read_reply_takes_variant_and_cached():
    body = json.dumps(
        {"request_id": "r", "results": [{"id": '"cached": 99', "score": 1}], "cached": 3, "latency_ms": 1},
        separators=(",", ":"),
    ).encode()
    assert read_reply(Reply(200, {"x-ab-variant": "candidate"}, body)) == ("candidate", 3)
    assert read_reply(Reply(200, {}, b'{"cached": 0}')) == (None, 0)
    assert read_reply(Reply(503, {}, b'{"error":"queue_full"}')) is None


def test_missing_data_says_where_to_get_it(tmp_path):
    with pytest.raises(DataMissing, match="--data"):
        Traffic.from_data(parse_scenario({"name": "t"}), tmp_path / "nothing")


def test_jsonl_data_keeps_every_service_field(catalog_jsonl):
    traffic = Traffic.from_data(parse_scenario({"name": "t", "services": 3}), catalog_jsonl)
    service = json.loads(traffic.body(traffic.draw(np.random.default_rng(0), 1)[0]))["services"][0]
    assert {"id", "title", "brand", "description"} <= set(service)


def _draws(traffic: Traffic, rank: int, sizes: tuple[int, ...]) -> list[Draw]:
    return [Draw(rank, n, "", False) for n in sizes]

"""What the load tests send, from the data (a Home Depot folder or a generic .jsonl file): the benchmark's
fixed request bodies, and a scenario's traffic of Zipf-popular queries, service counts, A/B buckets and
shadow mirrors.

Every request takes a query's own rated products first (the ones a search would retrieve) and fills up
to N with products of other queries (the irrelevant ads a candidate set also carries), so title
lengths and padding look like production traffic, not like a synthetic template.

For a scenario, queries are shuffled by its seed and ranked: rank 0 is the most popular. Each query
keeps one candidate list and a request for N services takes its first N, so a popular query repeats
the same (query, service) pairs the way ad traffic does, and the service's cache sees real repeats.
Bodies are serialised once and reused: the generator's CPU stays small. Both the open-loop runner
(``relevance loadtest run``) and the Locust file draw from :class:`Traffic`.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from loadtest.engine import Reply, arrival_offsets, http_request
from loadtest.scenario import Scenario, parse_scenario

DATA_HINT = (
    "no Home Depot data at {path}: pass --data with the folder holding pairs.csv and splits.csv "
    "(the project keeps it at ../shared/data/homedepot), or a .jsonl file in the generic format"
)


class DataMissing(Exception):
    pass


def load_test_split(data: Path) -> dict[str, list[dict[str, str]]]:
    """Test-split query -> its products (id, title), in file order."""
    return load_queries(data, "test", fields=("id", "title"))


def load_queries(
    data: Path, split: str | None, fields: tuple[str, ...] | None = None
) -> dict[str, list[dict[str, str]]]:
    """Query -> its rated products (``fields`` of each, or all of them), in file order, from a Home Depot
    folder or a generic .jsonl file, keeping only ``split`` (None: every row)."""
    from relevance.data import load_pairs

    is_jsonl = data.suffix == ".jsonl" and data.is_file()
    if (
        not is_jsonl
        and not (data / "pairs.csv").is_file()
        and not (data / "homedepot" / "pairs.csv").is_file()
    ):
        raise DataMissing(DATA_HINT.format(path=data))
    by_query: dict[str, list[dict[str, str]]] = defaultdict(list)
    for pair in load_pairs(data, split=split):
        service = pair.service if fields is None else {k: pair.service[k] for k in fields}
        by_query[pair.query].append(service)
    return dict(by_query)


def fill_candidates(
    own: list[dict[str, str]], catalogue: list[dict[str, str]], n: int, rng: random.Random
) -> list[dict[str, str]]:
    """Exactly ``n`` candidates: a query's own products first, then products drawn from ``catalogue``
    (the irrelevant ads a candidate set also carries)."""
    own = own[:n]
    if len(own) == n:
        return own
    missing = n - len(own)
    if missing <= len(catalogue):
        return own + rng.sample(catalogue, missing)
    return own + [rng.choice(catalogue) for _ in range(missing)]  # a catalogue smaller than one request


# -- the benchmark's bodies ---------------------------------------------------------------------------


def build_bodies(
    by_query: dict[str, list[dict[str, str]]], services: int, count: int, seed: int = 0
) -> list[bytes]:
    """``count`` distinct JSON bodies of exactly ``services`` services each, the queries taken in turn."""
    rng = random.Random(seed)
    queries = sorted(by_query)
    rng.shuffle(queries)
    catalogue = [p for q in queries for p in by_query[q]]
    bodies = []
    for i in range(count):
        query = queries[i % len(queries)]
        chosen = fill_candidates(by_query[query], catalogue, services, rng)
        candidates = [{"id": str(j), "title": p["title"]} for j, p in enumerate(chosen)]
        # a distinct request id per body; repeated bodies (count > queries) still differ in query order
        bodies.append(
            json.dumps({"query": query, "services": candidates, "request_id": f"bench-{i}"}).encode()
        )
    return bodies


def pairs_of(body: bytes) -> tuple[str, list[str]]:
    """(query, titles) of a body, for the raw ORT measurement."""
    obj = json.loads(body)
    return obj["query"], [s["title"] for s in obj["services"]]


# -- a scenario's traffic -----------------------------------------------------------------------------

T = TypeVar("T")

PRIMARY_PATH = "/relevance"
SHADOW_PATH = "/relevance/shadow"


class ZipfSampler:
    """Ranks 0..n-1 drawn with P(rank k) proportional to 1 / (k + 1) ** exponent (0: uniform)."""

    def __init__(self, n: int, exponent: float) -> None:
        if n < 1:
            raise ValueError("a Zipf pool needs at least one item")
        weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
        self.probs = weights / weights.sum()
        self._cdf = np.cumsum(self.probs)
        self._cdf[-1] = 1.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.searchsorted(self._cdf, rng.random(size), side="right")

    def top_share(self, k: int) -> float:
        """Expected share of draws that fall on the ``k`` most popular ranks."""
        return float(self.probs[:k].sum())


class Discrete(Generic[T]):
    """Values drawn with the given weights."""

    def __init__(self, weights: dict[T, float]) -> None:
        self.values = list(weights)
        probs = np.array([weights[v] for v in self.values], dtype=np.float64)
        self._cdf = np.cumsum(probs / probs.sum())
        self._cdf[-1] = 1.0

    def sample(self, rng: np.random.Generator, size: int) -> list[T]:
        return [self.values[i] for i in np.searchsorted(self._cdf, rng.random(size), side="right")]


@dataclass(frozen=True)
class Draw:
    """One request of a scenario: which query, how many services, which bucket, mirrored or not."""

    rank: int
    services: int
    bucket: str  # "" = no X-AB-Bucket header
    shadow: bool


class Traffic:
    def __init__(self, scenario: Scenario, by_query: dict[str, list[dict[str, str]]]) -> None:
        if not by_query:
            raise ValueError("no queries in the data")
        self.scenario = scenario
        rng = random.Random(scenario.seed)
        queries = sorted(by_query)
        rng.shuffle(queries)
        self.queries = queries[: scenario.queries.pool]
        self._own = by_query
        self._catalogue = [p for q in sorted(by_query) for p in by_query[q]]
        self.zipf = ZipfSampler(len(self.queries), scenario.queries.zipf_exponent)
        self.sizes: Discrete[int] = Discrete(scenario.services_distribution)
        self.buckets: Discrete[str] | None = Discrete(scenario.buckets) if scenario.buckets else None
        self._candidates: dict[int, list[dict[str, str]]] = {}
        self._bodies: dict[tuple[int, int], bytes] = {}
        self._requests: dict[tuple[int, int, str, str, str, int], bytes] = {}

    @classmethod
    def from_data(cls, scenario: Scenario, data: Path) -> Traffic:
        """Raises :class:`DataMissing` with a hint when ``data`` is not there."""
        return cls(scenario, load_queries(data, scenario.queries.split))

    def with_changes(self, **changes: object) -> Traffic:
        """The same data and query ranking under a scenario with ``changes`` (e.g. ``deadline_ms=None``)."""
        return Traffic(parse_scenario({**self.scenario.model_dump(), **changes}), self._own)

    def timed_draws(self, rate_rps: float, count: int, seed: int) -> list[tuple[float, Draw]]:
        """``count`` draws with their send offsets (seconds) at ``rate_rps``, the scenario's arrivals, both
        seeded by ``seed``."""
        offsets = arrival_offsets(rate_rps, count, self.scenario.arrivals, seed)
        return list(zip(offsets, self.draw(np.random.default_rng(seed), count), strict=True))

    def draw(self, rng: np.random.Generator, count: int) -> list[Draw]:
        ranks = self.zipf.sample(rng, count)
        sizes = self.sizes.sample(rng, count)
        buckets = self.buckets.sample(rng, count) if self.buckets else [""] * count
        shadow = rng.random(count) < self.scenario.shadow_share
        return [Draw(int(r), n, b, bool(s)) for r, n, b, s in zip(ranks, sizes, buckets, shadow, strict=True)]

    def candidates(self, rank: int) -> list[dict[str, str]]:
        """The query's fixed candidate list, as long as the largest request of the scenario."""
        if rank not in self._candidates:
            query = self.queries[rank]
            rng = random.Random(self.scenario.seed * 1_000_003 + rank)
            self._candidates[rank] = fill_candidates(
                self._own[query], self._catalogue, self.scenario.max_services, rng
            )
        return self._candidates[rank]

    def pairs(self, draw: Draw) -> tuple[str, list[str]]:
        """(query, titles) of a draw, for the raw ORT measurement."""
        return self.queries[draw.rank], [s["title"] for s in self.candidates(draw.rank)[: draw.services]]

    def body(self, draw: Draw) -> bytes:
        key = (draw.rank, draw.services)
        if key not in self._bodies:
            services = self.candidates(draw.rank)[: draw.services]
            self._bodies[key] = json.dumps(
                {"query": self.queries[draw.rank], "services": services}, ensure_ascii=False
            ).encode()
        return self._bodies[key]

    def headers(self, draw: Draw) -> dict[str, str]:
        headers = {}
        if draw.bucket:
            headers["X-AB-Bucket"] = draw.bucket
        if self.scenario.deadline_ms is not None:
            headers["X-Deadline-Ms"] = f"{self.scenario.deadline_ms:g}"
        return headers

    def request(self, draw: Draw, path: str, host: str, port: int) -> bytes:
        """The raw HTTP request of ``draw`` to ``path`` (a mirror is the same request to the shadow path)."""
        key = (draw.rank, draw.services, draw.bucket, path, host, port)
        if key not in self._requests:
            self._requests[key] = http_request(host, port, path, self.body(draw), self.headers(draw))
        return self._requests[key]

    def summary(self) -> dict[str, object]:
        """What the report says about the traffic, before any of it is sent."""
        n = len(self.queries)
        return {
            "queries_in_pool": n,
            "zipf_exponent": self.scenario.queries.zipf_exponent,
            "expected_share_of_top_1pct_queries": round(self.zipf.top_share(max(1, n // 100)), 4),
            "expected_share_of_top_10_queries": round(self.zipf.top_share(10), 4),
            "mean_services_per_request": round(self.scenario.mean_services, 3),
            "services_distribution": {str(k): v for k, v in self.scenario.services_distribution.items()},
            "buckets": dict(self.scenario.buckets),
            "shadow_share": self.scenario.shadow_share,
            "deadline_ms": self.scenario.deadline_ms,
        }


_CACHED = re.compile(rb"\s*(\d+)")


def read_reply(reply: Reply) -> tuple[str | None, int | None] | None:
    """(X-AB-Variant, the body's ``cached``) of a 200 reply, read without parsing the whole JSON: the
    service writes ``cached`` after ``results``, so its last occurrence is the top-level key."""
    if reply.status != 200:
        return None
    at = reply.body.rfind(b'"cached":')
    match = _CACHED.match(reply.body, at + 9) if at >= 0 else None
    return reply.headers.get("x-ab-variant"), int(match.group(1)) if match else None

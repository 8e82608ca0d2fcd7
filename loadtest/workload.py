"""Realistic request bodies from the Home Depot test split: one query and N candidate services.

Each request takes a test query's own rated products first (the ones a search would retrieve) and
fills up to N with products drawn from other test queries (the irrelevant ads a candidate set also
carries), so title lengths and padding look like production traffic, not like a synthetic template.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

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


def build_bodies(
    by_query: dict[str, list[dict[str, str]]], services: int, count: int, seed: int = 0
) -> list[bytes]:
    """``count`` distinct JSON bodies of exactly ``services`` services each."""
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

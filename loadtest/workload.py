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
    "(the project keeps it at ../shared/data/homedepot)"
)


class DataMissing(Exception):
    pass


def load_test_split(data: Path) -> dict[str, list[dict[str, str]]]:
    """Test-split query -> its products (id, title), in file order."""
    from relevance.data import load_pairs

    if not (data / "pairs.csv").is_file() and not (data / "homedepot" / "pairs.csv").is_file():
        raise DataMissing(DATA_HINT.format(path=data))
    by_query: dict[str, list[dict[str, str]]] = defaultdict(list)
    for pair in load_pairs(data, split="test"):
        by_query[pair.query].append({"id": pair.service["id"], "title": pair.service["title"]})
    return dict(by_query)


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
        own = by_query[query][:services]
        fill = rng.sample(catalogue, services - len(own)) if len(own) < services else []
        candidates = [{"id": str(j), "title": p["title"]} for j, p in enumerate(own + fill)]
        # a distinct request id per body; repeated bodies (count > queries) still differ in query order
        bodies.append(
            json.dumps({"query": query, "services": candidates, "request_id": f"bench-{i}"}).encode()
        )
    return bodies


def pairs_of(body: bytes) -> tuple[str, list[str]]:
    """(query, titles) of a body, for the raw ORT measurement."""
    obj = json.loads(body)
    return obj["query"], [s["title"] for s in obj["services"]]

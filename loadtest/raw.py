"""Raw ONNX Runtime compute rate of a bundle: ``session.run`` on padded batches, nothing else.

The ceiling a server is measured against: batches of one request's services (one query, N titles),
tokenised and padded up front, run back to back for a fixed time. Also reports how much of those
padded batches is padding, the share a length-sorting batcher can win back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from relevance.bundle import load_bundle
from service.model import BundleModel


@dataclass(frozen=True)
class RawResult:
    pairs_per_s: float
    batch_pairs: int
    padding_share: float  # padded tokens that are padding
    precision: str
    runs: int


def raw_compute_rate(
    bundle: Path,
    requests: list[tuple[str, list[str]]],
    precision: str | None,
    intra_op_threads: int,
    seconds: float = 5.0,
) -> RawResult:
    # ORT's default session options (spinning threads included): the ceiling, not the service's setup
    model = BundleModel.load(load_bundle(bundle), precision, intra_op_threads=intra_op_threads)
    batches = []
    real = padded = 0
    for query, titles in requests:
        examples = model.encode(query, [{"title": t} for t in titles])
        batch = model.encoder.pad(examples)
        batches.append(batch)
        real += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].size
    for batch in batches[:3]:
        model.backend.predict(batch)  # allocation and first-run costs are not compute
    runs = pairs = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        batch = batches[runs % len(batches)]
        model.backend.predict(batch)
        runs += 1
        pairs += len(batch["input_ids"])
    return RawResult(pairs / elapsed, len(requests[0][1]), 1 - real / padded, model.precision, runs)

"""Raw ONNX Runtime compute rate of a bundle: ``session.run`` on request batches, nothing else.

The ceiling a server is measured against: batches of one request's services (one query, N titles),
tokenised up front, run back to back. Two ways to run a request are timed *interleaved* (request by
request, so a noisy neighbour slows both alike):

* **padded**: the request as one batch padded to its longest pair (the issue's "raw compute");
* **planned**: the request length-sorted and cut into runs of ``max_run_pairs``, each padded to its own
  longest pair, exactly as the service's batcher plans a lone request (:func:`service.batcher.plan_runs`).

Planned over padded is what padding-aware batching can win; the service over planned is what the
server itself costs (HTTP, JSON, tokenisation, queueing). ``relevance loadtest raw --run-pairs 4,8,16,32``
compares run sizes, the evidence behind the ``max_run_pairs`` default.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loadtest.config import RawConfig
from loadtest.report import table
from loadtest.traffic import DataMissing, build_bodies, load_test_split, pairs_of
from relevance.bundle import Bundle, load_bundle
from relevance.model import BundleModel
from service.batcher import plan_runs
from service.settings import Settings


@dataclass(frozen=True)
class RawResult:
    pairs_per_s: float  # padded: one batch per request
    batch_pairs: int
    padding_share: float  # padded tokens that are padding
    precision: str
    runs: int
    # max_run_pairs -> (pairs/s, padding share) when the request is cut into sorted runs of that size
    planned: dict[int, tuple[float, float]] = field(default_factory=dict)


Batch = dict[str, np.ndarray]


def served_model(bundle: Bundle, intra_op_threads: int | None = None) -> BundleModel:
    """The bundle's default graph in one ONNX Runtime session set up as ``relevance serve`` sets it up
    (its intra-op threads unless given, its spinning setting: off, so sessions timed in turn do not
    steal each other's cores)."""
    defaults = Settings.model_construct()
    threads = defaults.intra_op_threads if intra_op_threads is None else intra_op_threads
    return BundleModel.load(bundle, None, intra_op_threads=threads, allow_spinning=defaults.ort_allow_spinning)


def planned_runs(model: BundleModel, examples: list, run_pairs: int) -> list[Batch]:
    """One request's encoded pairs as the batcher runs them alone: sorted runs of ``run_pairs``, each padded."""
    runs = plan_runs([[len(ids) for ids, _ in examples]], run_pairs)
    return [model.encoder.pad([examples[i] for _, i in run]) for run in runs]


def _plans(model: BundleModel, examples: list, run_pairs: Sequence[int]) -> dict[int, list[Batch]]:
    """0 -> the request as one padded batch; k -> its runs as the batcher plans them with max_run_pairs=k."""
    return {0: [model.encoder.pad(examples)], **{k: planned_runs(model, examples, k) for k in run_pairs}}


def _padding(batches: list[list[Batch]]) -> float:
    real = sum(int(b["attention_mask"].sum()) for bs in batches for b in bs)
    return 1 - real / sum(b["attention_mask"].size for bs in batches for b in bs)


Predict = Callable[[Batch], object]


def time_interleaved(jobs: Sequence[tuple[Predict, list[list[Batch]]]], seconds: float) -> tuple[list[float], int]:
    """Pairs/s of each job (a predict function and its batches per request), request by request in turn,
    until every job has run ``seconds`` (a noisy neighbour slows every job alike, so ratios hold); and
    the requests each job ran."""
    for predict, requests in jobs:
        for request in requests[:3]:  # allocation and first-run costs are not compute
            for batch in request:
                predict(batch)
    spent, pairs = [0.0] * len(jobs), [0] * len(jobs)
    i = 0
    while min(spent) < seconds:
        for j, (predict, requests) in enumerate(jobs):
            request = requests[i % len(requests)]
            started = time.perf_counter()
            for batch in request:
                predict(batch)
            spent[j] += time.perf_counter() - started
            pairs[j] += sum(len(b["input_ids"]) for b in request)
        i += 1
    return [p / s for p, s in zip(pairs, spent, strict=True)], i


def planned_batches(model: BundleModel, requests: list[tuple[str, list[str]]], run_pairs: int) -> list[list[Batch]]:
    """Each request's runs as the batcher plans a lone request with ``max_run_pairs=run_pairs``."""
    return [planned_runs(model, model.encode(q, [{"title": t} for t in titles]), run_pairs) for q, titles in requests]


def raw_compute_rate(
    bundle: Path,
    requests: list[tuple[str, list[str]]],
    precision: str | None,
    intra_op_threads: int,
    seconds: float = 5.0,
    run_pairs: Sequence[int] = (),
) -> RawResult:
    """Pairs/s of the padded plan and of each ``run_pairs`` plan, each timed for about ``seconds``."""
    # ORT's default session options (spinning threads included): the ceiling, not the service's setup
    model = BundleModel.load(load_bundle(bundle), precision, intra_op_threads=intra_op_threads)
    plans = [_plans(model, model.encode(q, [{"title": t} for t in titles]), run_pairs) for q, titles in requests]
    keys = [0, *run_pairs]
    rates, runs = time_interleaved([(model.backend.predict, [p[k] for p in plans]) for k in keys], seconds)
    planned = {k: (rate, _padding([p[k] for p in plans])) for k, rate in zip(keys[1:], rates[1:], strict=True)}
    return RawResult(rates[0], len(requests[0][1]), _padding([p[0] for p in plans]), model.precision, runs, planned)


def run(cfg: RawConfig) -> int:
    """Prints the padded plan's rate against sorted runs of each ``cfg.run_pairs``. Returns the exit status."""
    try:
        bodies = build_bodies(load_test_split(Path(cfg.data)), cfg.services, 64)
    except DataMissing as err:
        print(err, file=sys.stderr)
        return 2
    bundle = Path(cfg.bundle)
    raw = raw_compute_rate(bundle, [pairs_of(b) for b in bodies], None, cfg.threads, cfg.seconds, cfg.run_pairs)
    m = load_bundle(bundle, verify=False).manifest
    print(f"{m.name} {m.version} ({raw.precision}), requests of {raw.batch_pairs} services, {raw.runs} requests per plan")
    rows = [["one padded batch", f"{raw.pairs_per_s:.0f}", f"{raw.padding_share:.0%}", "1.00x"]]
    rows += [
        [f"sorted runs of {k}", f"{rate:.0f}", f"{padding:.0%}", f"{rate / raw.pairs_per_s:.2f}x"]
        for k, (rate, padding) in raw.planned.items()
    ]
    print("\n".join(table(["plan", "pairs/s", "padding", "vs padded"], "lrrr", rows)))
    return 0


if __name__ == "__main__":  # python -m loadtest.raw: the same as relevance loadtest raw
    from loadtest import run_as_relevance_command

    run_as_relevance_command("raw")

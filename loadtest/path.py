"""Where a lone request's time goes beyond its compute: HTTP, validation, the tokenisation hop, JSON.

    relevance loadtest path --bundle models/default --data ../shared/data/homedepot

For each request size (1-32 services by default), on the same test-split requests (each a new query):

* **tokenise**: the request's pairs encoded by the bundle's tokenizer, in this process;
* **compute**: its pairs as the service plans a lone request (length-sorted runs of ``max_run_pairs``),
  run back to back on one session with the service's own ORT settings (intra-op threads over the cores);
* **split**: the same runs dealt over two single-threaded sessions that run at once, one per core: the
  alternative to intra-op threading for a request of two or more runs;
* **server**: the request through ``relevance serve`` (default settings, cache off), one at a time: the
  answer's own ``latency_ms`` (arrival to answer built, in the server) and the client's p50.

*Beyond compute* is the client's p50 minus compute's: what the service adds to the model. Every number
is a median of the same requests, measured in one run; run it on a quiet machine.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.config import PathConfig
from loadtest.engine import Reply
from loadtest.raw import planned_runs, served_model
from loadtest.report import cpu_description, table, utc_now, write_json
from loadtest.servers import lone_outcomes, max_run_pairs
from loadtest.traffic import DataMissing, build_bodies, load_test_split, pairs_of
from relevance.bundle import load_bundle
from relevance.model import BundleModel


def _median_ms(seconds: Sequence[float]) -> float:
    return round(float(np.median(seconds)) * 1000, 2)


@dataclass(frozen=True)
class Sessions:
    """The bundle as the service runs it (one session, intra-op threads over the cores, the service's
    spinning setting) and as two single-threaded sessions for the split plan; loaded once per run."""

    served: BundleModel
    singles: tuple[BundleModel, BundleModel]

    @classmethod
    def load(cls, bundle: Path) -> Sessions:
        loaded = load_bundle(bundle)
        served = served_model(loaded)
        singles = tuple(served_model(loaded, 1) for _ in range(2))
        return cls(served, singles)


def in_process(sessions: Sessions, requests: list[tuple[str, list[str]]], run_pairs: int) -> dict[str, float]:
    """Tokenise, compute as served (one session, intra-op threads) and compute split over two sessions."""
    served, singles = sessions.served, sessions.singles
    tokenise, compute, split = [], [], []
    with ThreadPoolExecutor(2) as pool:
        for i, (query, titles) in enumerate(requests):
            started = time.perf_counter()
            examples = served.encode(query, [{"title": t} for t in titles])
            tokenise.append(time.perf_counter() - started)
            runs = planned_runs(served, examples, run_pairs)
            for _ in range(2 if i < 2 else 1):  # the first two requests run twice, all four untimed: warm-up
                started = time.perf_counter()
                for batch in runs:
                    served.backend.predict(batch)
                compute.append(time.perf_counter() - started)
                started = time.perf_counter()
                list(pool.map(lambda k, runs=runs: [singles[k].backend.predict(b) for b in runs[k::2]], range(2)))
                split.append(time.perf_counter() - started)
    # the first two requests are warm-up: their tokenisation and their four runs of each plan do not count
    return {"tokenise_ms": _median_ms(tokenise[2:]), "compute_ms": _median_ms(compute[4:]),
            "split_ms": _median_ms(split[4:])}


def _server_latency(reply: Reply) -> float | None:
    return json.loads(reply.body)["latency_ms"] / 1000 if reply.status == 200 else None


def through_service(bundle: Path, bodies: dict[int, list[bytes]], gap_s: float, log: Path) -> dict[int, dict]:
    """Per size: client p50 and the server's own latency_ms p50 of lone requests (cache off)."""
    outcomes = lone_outcomes(bundle, bodies, gap_s, log, observe=_server_latency)
    return {n: {"client_ms": _median_ms([o.latency_s for o in os_]),
                "server_ms": _median_ms([o.info for o in os_ if o.info is not None]),
                "all_200": all(o.status == 200 for o in os_)} for n, os_ in outcomes.items()}


def measure(cfg: PathConfig) -> list[dict[str, Any]]:
    by_query = load_test_split(Path(cfg.data))
    run_pairs = max_run_pairs({})
    bundle = Path(cfg.bundle)
    bodies = {n: build_bodies(by_query, n, cfg.requests + 3, seed=n) for n in cfg.sizes}
    served = through_service(bundle, bodies, cfg.gap_s, Path(cfg.out) / "server.log")
    sessions = Sessions.load(bundle)
    rows = []
    for n in cfg.sizes:
        row = {"services": n, **in_process(sessions, [pairs_of(b) for b in bodies[n]], run_pairs), **served[n]}
        row["beyond_compute_ms"] = round(row["client_ms"] - row["compute_ms"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def markdown(report: dict[str, Any]) -> str:
    rows = [[r["services"], r["tokenise_ms"], r["compute_ms"], r["split_ms"], r["server_ms"], r["client_ms"],
             r["beyond_compute_ms"]] for r in report["rows"]]
    head = ["services", "tokenise ms", "compute ms (intra-op threads)", "compute ms (runs split over 2 cores)",
            "server ms (latency_ms)", "client ms", "beyond compute ms"]
    return "\n".join([
        f"Command: `{report['command']}`  ",
        (f"Measured {report['date']} on {report['machine']}; bundle {report['bundle']}; p50 of "
         f"{report['requests']} lone requests per size, each a new query, cache off, sorted runs of "
         f"{report['run_pairs']}."),
        "",
        *table(head, "rrrrrrr", rows),
    ])


def run(cfg: PathConfig, command: str) -> int:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        rows = measure(cfg)
    except DataMissing as err:
        print(err, file=sys.stderr)
        return 2
    m = load_bundle(Path(cfg.bundle), verify=False).manifest
    report = {"command": command, "date": utc_now("%Y-%m-%d %H:%M UTC"), "machine": cpu_description(),
              "bundle": f"{m.name} {m.version}", "requests": cfg.requests, "run_pairs": max_run_pairs({}),
              "rows": rows}
    write_json(out / "report.json", report)
    text = markdown(report)
    (out / "report.md").write_text(text + "\n")
    print(text)
    return 0

"""Where a lone request's time goes beyond its compute: HTTP, validation, the tokenisation hop, JSON.

    relevance loadtest path --bundle models/default --data ../shared/data/homedepot

For each request size (1-32 services by default), on the same test-split requests (each a new query):

* **tokenise**: the request's pairs encoded by the bundle's tokenizer, in this process;
* **compute**: its pairs as the service plans a lone request (length-sorted runs of ``max_run_pairs``)
  on one session with the service's own settings (intra-op threads over the cores), timed twice: after
  the same idle pause as the lone requests through the service (``--gap-s``: what a lone request's
  compute costs, caches and thread pools gone cold) and at once again (hot, back to back);
* **split**: the same runs dealt over two single-threaded sessions that run at once, one per core: the
  alternative to intra-op threading for a request of two or more runs (after the same pause);
* **server**: the request through ``relevance serve`` (default settings, cache off), one at a time: the
  client's p50, the answer's own ``latency_ms`` and its ``Server-Timing`` phases
  (:mod:`service.timing`: parse, admit, tokenize, queue, dispatch, inference, deliver, respond).

*Beyond compute* is the client's p50 minus the compute's after the same pause: what the service adds
to calling the model directly. *Request path* is, per request, the client's latency minus the
server's own ``tokenize`` and ``inference`` phases: what HTTP, validation, admission, the hops, the
queue and the JSON cost on the same request, free of the run-to-run spread of the compute. Every
number is a median of the same requests, measured in one run; run it on a quiet machine.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
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
from service.timing import PHASES, parse_server_timing


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


def in_process(
    sessions: Sessions, requests: list[tuple[str, list[str]]], run_pairs: int, gap_s: float
) -> dict[str, float]:
    """Tokenise; compute as served (one session, intra-op threads) after a ``gap_s`` pause and again at
    once; compute split over two sessions after the same pause."""
    served, singles = sessions.served, sessions.singles
    tokenise, idle, hot, split = [], [], [], []

    def timed(work: Callable[[], object], into: list[float], pause_s: float = gap_s) -> None:
        time.sleep(pause_s)
        started = time.perf_counter()
        work()
        into.append(time.perf_counter() - started)

    with ThreadPoolExecutor(2) as pool:
        for query, titles in requests:
            started = time.perf_counter()
            examples = served.encode(query, [{"title": t} for t in titles])
            tokenise.append(time.perf_counter() - started)
            runs = planned_runs(served, examples, run_pairs)

            def as_served(runs: list = runs) -> None:
                for batch in runs:
                    served.backend.predict(batch)

            def dealt(runs: list = runs) -> None:
                list(pool.map(lambda k: [singles[k].backend.predict(b) for b in runs[k::2]], range(2)))

            timed(as_served, idle)
            timed(as_served, hot, pause_s=0.0)
            timed(dealt, split)
    # the first two requests are warm-up: they do not count
    return {"tokenise_ms": _median_ms(tokenise[2:]), "compute_ms": _median_ms(idle[2:]),
            "compute_hot_ms": _median_ms(hot[2:]), "split_ms": _median_ms(split[2:])}


def _server_timing(reply: Reply) -> dict[str, float] | None:
    """The answer's ``latency_ms`` (as ``total``) and ``Server-Timing`` phases, ms."""
    if reply.status != 200:
        return None
    return {**parse_server_timing(reply.headers.get("server-timing", "")),
            "total": json.loads(reply.body)["latency_ms"]}


def through_service(bundle: Path, bodies: dict[int, list[bytes]], gap_s: float, log: Path) -> dict[int, dict]:
    """Per size: client p50, the server's own latency_ms p50 and each phase's p50 (cache off)."""
    outcomes = lone_outcomes(bundle, bodies, gap_s, log, observe=_server_timing)
    rows = {}
    for n, os_ in outcomes.items():
        answered = [(o.latency_s * 1000, o.info) for o in os_ if o.info is not None]

        def p50(values: list[float], digits: int = 2) -> float | None:
            return round(float(np.median(values)), digits) if values else None

        rows[n] = {"client_ms": _median_ms([o.latency_s for o in os_]),
                   # per request: the client's wait less the model's work in the server
                   "path_ms": p50([ms - t.get("tokenize", 0.0) - t.get("inference", 0.0) for ms, t in answered]),
                   "server_ms": p50([t["total"] for _, t in answered]),
                   "phases_ms": {p: p50([t.get(p, 0.0) for _, t in answered], 3) for p in PHASES} if answered else {},
                   "all_200": all(o.status == 200 for o in os_)}
    return rows


def measure(cfg: PathConfig) -> list[dict[str, Any]]:
    by_query = load_test_split(Path(cfg.data))
    run_pairs = max_run_pairs({})
    bundle = Path(cfg.bundle)
    bodies = {n: build_bodies(by_query, n, cfg.requests + 3, seed=n) for n in cfg.sizes}
    served = through_service(bundle, bodies, cfg.gap_s, Path(cfg.out) / "server.log")
    sessions = Sessions.load(bundle)
    rows = []
    for n in cfg.sizes:
        row = {"services": n, **in_process(sessions, [pairs_of(b) for b in bodies[n]], run_pairs, cfg.gap_s),
               **served[n]}
        row["beyond_compute_ms"] = round(row["client_ms"] - row["compute_ms"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def markdown(report: dict[str, Any]) -> str:
    rows = [[r["services"], r["tokenise_ms"], r["compute_hot_ms"], r["compute_ms"], r["split_ms"], r["server_ms"],
             r["client_ms"], r["beyond_compute_ms"], r["path_ms"]] for r in report["rows"]]
    head = ["services", "tokenise ms", "compute ms (hot)", "compute ms (after the pause)",
            "compute ms (runs split over 2 cores)", "server ms (latency_ms)", "client ms", "beyond compute ms",
            "request path ms"]
    phases = [[r["services"], *(r["phases_ms"].get(p, "n/a") for p in PHASES), r["server_ms"]] for r in report["rows"]]
    return "\n".join([
        f"Command: `{report['command']}`  ",
        (f"Measured {report['date']} on {report['machine']}; bundle {report['bundle']}; p50 of "
         f"{report['requests']} lone requests per size, each a new query, {report['gap_s'] * 1000:g} ms apart, "
         f"cache off, sorted runs of {report['run_pairs']}. Beyond compute = client - compute after the pause; request "
         "path = per request, client - the server's tokenize and inference phases (its Server-Timing)."),
        "",
        *table(head, "r" * len(head), rows),
        "",
        "Server-Timing phases, p50 ms (each phase's own median: they need not add up to the total's):",
        "",
        *table(["services", *PHASES, "total"], "r" * (len(PHASES) + 2), phases),
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
              "bundle": f"{m.name} {m.version}", "requests": cfg.requests, "gap_s": cfg.gap_s,
              "run_pairs": max_run_pairs({}),
              "rows": rows}
    write_json(out / "report.json", report)
    text = markdown(report)
    (out / "report.md").write_text(text + "\n")
    print(text)
    return 0

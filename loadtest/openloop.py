"""An open-loop HTTP load generator: requests leave on a fixed schedule, whatever the server does.

A closed loop (send, wait, send) slows down with the server and hides its queueing (coordinated
omission). Here arrival times are drawn up front (Poisson or evenly spaced), each request is sent
at its time on a free keep-alive connection (a new one if none is free), and its latency is measured
from the *scheduled* send time, so a late send, or a generator that falls behind, counts against
the result rather than vanishing from it.

The client is a minimal HTTP/1.1 writer/reader on asyncio streams with pre-serialised bodies, so
the generator's own CPU stays small on a box it shares with the server (it is measured anyway).
:func:`run_schedule` sends any list of requests at given offsets (the load-test kit mixes endpoints
and reads each reply through ``observe``); :func:`run_rate` is one rate of the benchmark on it.
"""

from __future__ import annotations

import asyncio
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Outcome:
    scheduled: float
    latency_s: float
    status: int  # 0 = transport error or timeout
    index: int = -1  # position of the request in its schedule
    info: Any = None  # what the caller's ``observe`` read from the reply


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass
class ScheduleRun:
    """The measured part of one schedule: outcomes, the window they span and the CPU spent meanwhile."""

    outcomes: list[Outcome]
    window_s: float  # first measured scheduled send -> last measured completion
    generator_cpu_s: float
    server_cpu_s: float | None
    max_send_lag_s: float  # how late the generator sent a measured request at worst (its own delay)


@dataclass
class RateResult:
    offered_rps: float
    pairs_per_request: int
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0
    generator_cpu_s: float = 0.0
    server_cpu_s: float | None = None

    @property
    def offered_pairs_s(self) -> float:
        return self.offered_rps * self.pairs_per_request

    @property
    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200]

    @property
    def achieved_pairs_s(self) -> float:
        return len(self.ok) * self.pairs_per_request / self.wall_s if self.wall_s else 0.0

    @property
    def failure_rate(self) -> float:
        return 1 - len(self.ok) / len(self.outcomes) if self.outcomes else 1.0

    def percentile_ms(self, q: float, count_failures: bool = False) -> float:
        """Latency percentile of successful requests; with ``count_failures``, a refused or failed
        request counts as infinitely slow (so more than 1% failures means p99 = inf)."""
        if count_failures:
            lat = [o.latency_s if o.status == 200 else float("inf") for o in self.outcomes]
        else:
            lat = [o.latency_s for o in self.ok]
        return percentile_ms(lat, q)

    def meets(self, p99_target_ms: float) -> bool:
        return self.percentile_ms(99, count_failures=True) <= p99_target_ms

    @property
    def generator_cpu_pct(self) -> float:
        return 100 * self.generator_cpu_s / self.wall_s if self.wall_s else 0.0

    @property
    def server_cpu_pct(self) -> float | None:
        return None if self.server_cpu_s is None or not self.wall_s else 100 * self.server_cpu_s / self.wall_s


def percentile_ms(latencies_s: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of latencies in seconds, in ms: a value that was measured (no interpolation
    between two requests); infinity when there is none."""
    if not latencies_s:
        return float("inf")
    return float(np.percentile(latencies_s, q, method="higher")) * 1000


def planned_count(rate_rps: float, duration_s: float, max_requests: int, warmup_s: float) -> tuple[int, int]:
    """(unmeasured warm-up requests, all requests) of one rate: at most ``max_requests`` are measured."""
    n_warm = int(rate_rps * warmup_s)
    return n_warm, min(max_requests, max(1, int(rate_rps * duration_s))) + n_warm


def arrival_offsets(rate_rps: float, count: int, kind: str, seed: int) -> list[float]:
    """Seconds from start at which each request is due."""
    if kind == "uniform":
        return [i / rate_rps for i in range(count)]
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(count):
        out.append(t)
        t += rng.expovariate(rate_rps)
    return out


class Pool:
    """Keep-alive connections to one loopback server; grows when every connection is busy."""

    def __init__(self, host: str, port: int) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"the load generator only targets loopback hosts, not {host}")
        self.host, self.port = host, port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    def _take_idle(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """An idle connection the server has not closed meanwhile (uvicorn drops keep-alive
        connections idle for 5 s; reusing one would count the server's housekeeping as an error)."""
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    async def request(self, raw: bytes, timeout: float) -> Reply:
        conn = self._take_idle()
        if conn is None:
            conn = await asyncio.open_connection(self.host, self.port)
            self.opened += 1
        reader, writer = conn
        try:
            writer.write(raw)
            reply = await asyncio.wait_for(_read_response(reader), timeout)
        except BaseException:
            writer.close()
            raise
        if reply.headers.get("connection", "").lower() != "close":
            self._idle.append(conn)
        else:
            writer.close()
        return reply

    async def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def _read_response(reader: asyncio.StreamReader) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Reply(status, headers, body)


def http_request(
    host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None
) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


async def run_schedule(
    pool: Pool,
    offsets: Sequence[float],
    requests: Sequence[bytes],
    n_warm: int,
    timeout_s: float = 10.0,
    server_cpu: Callable[[], float | None] | None = None,
    observe: Callable[[Reply], Any] | None = None,
    start: float | None = None,
) -> ScheduleRun:
    """Send ``requests[i]`` at ``offsets[i]`` seconds (sorted) from ``start``, whatever the server does; the
    first ``n_warm`` are not measured. ``start`` is a ``time.monotonic()`` instant (default: 50 ms from now),
    so a caller can time other work against the schedule. Each outcome keeps its schedule index and, for a
    reply, ``observe(reply)``. Ends when every request has an answer, an error or its ``timeout_s``: the run is
    bounded by the last offset plus ``timeout_s``. ``server_cpu()`` (CPU seconds of the server) is read
    over the same measured window as the generator's own CPU."""
    if len(requests) != len(offsets):
        raise ValueError(f"{len(requests)} requests for {len(offsets)} send times")
    start = time.monotonic() + 0.05 if start is None else start
    lags: list[float] = []

    async def one(i: int, due: float) -> Outcome:
        info = None
        try:
            reply = await pool.request(requests[i], timeout_s)
            status = reply.status
            if observe is not None:
                info = observe(reply)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            status = 0
        return Outcome(due, time.monotonic() - due, status, i, info)

    def cpu_now() -> tuple[float, float | None]:
        return _cpu_seconds(), server_cpu() if server_cpu else None

    tasks = []
    cpu0 = cpu_now()
    for i, offset in enumerate(offsets):
        due = start + offset
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        if i >= n_warm:
            lags.append(time.monotonic() - due)
        tasks.append(asyncio.create_task(one(i, due)))
        if i + 1 == n_warm:  # CPU is counted over the measured part only
            cpu0 = cpu_now()
    outcomes = await asyncio.gather(*tasks)
    cpu1 = cpu_now()
    measured = list(outcomes[n_warm:])
    first = measured[0].scheduled if measured else start
    end = max(o.scheduled + o.latency_s for o in measured) if measured else first
    server_cpu_s = cpu1[1] - cpu0[1] if cpu0[1] is not None and cpu1[1] is not None else None
    return ScheduleRun(measured, end - first, cpu1[0] - cpu0[0], server_cpu_s, max(lags, default=0.0))


async def run_rate(
    pool: Pool,
    requests: list[bytes],
    rate_rps: float,
    duration_s: float,
    max_requests: int,
    pairs_per_request: int,
    arrivals: str = "poisson",
    warmup_s: float = 1.0,
    timeout_s: float = 10.0,
    seed: int = 0,
    server_cpu: Callable[[], float | None] | None = None,
) -> RateResult:
    """Offer ``rate_rps`` for ``duration_s`` (at most ``max_requests``), after ``warmup_s`` at the same rate
    whose requests are not counted, cycling through ``requests``."""
    n_warm, count = planned_count(rate_rps, duration_s, max_requests, warmup_s)
    run = await run_schedule(
        pool,
        arrival_offsets(rate_rps, count, arrivals, seed),
        [requests[i % len(requests)] for i in range(count)],
        n_warm,
        timeout_s,
        server_cpu,
    )
    return RateResult(
        rate_rps,
        pairs_per_request,
        run.outcomes,
        wall_s=measured_window(run.window_s, len(run.outcomes), rate_rps),
        generator_cpu_s=run.generator_cpu_s,
        server_cpu_s=run.server_cpu_s,
    )


def measured_window(window_s: float, measured_arrivals: int, rate_rps: float) -> float:
    """Seconds to divide the measured work by: at least the offered schedule's length, so a Poisson clump
    finishing early does not show as more throughput than was offered."""
    return max(window_s, measured_arrivals / rate_rps)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

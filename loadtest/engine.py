"""The load engine every tool runs on: an HTTP client, the open- and closed-loop runners, per-step statistics.

A closed loop (send, wait, send) slows down with the server and hides its queueing (coordinated
omission). The open loop (:func:`run_schedule`) draws arrival times up front (Poisson or evenly
spaced), sends each request at its time on a free keep-alive connection (a new one if none is free),
and measures its latency from the *scheduled* send time, so a late send, or a generator that falls
behind, counts against the result rather than vanishing from it. The closed loop
(:func:`run_closed_loop`) is for what must be one at a time: lone requests on an idle server, and
probes that wait for normal service to return.

The client is a minimal HTTP/1.1 writer/reader on asyncio streams with pre-serialised bodies, so the
generator's own CPU stays small on a box it shares with the server (it is measured anyway). The
statistics of a step are read from its outcomes: :class:`RateResult` for the benchmark's rates,
:func:`endpoint_stats` for one endpoint of a mixed schedule. The servers under test are started and
waited for by :mod:`loadtest.servers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import random
import resource
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# what a request can end in besides a reply: counted as status 0
SEND_ERRORS = (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError)


@dataclass
class Outcome:
    scheduled: float  # when it was due (the open loop) or sent (the closed loop), time.monotonic()
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


# -- the client ---------------------------------------------------------------------------------------


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
        """One exchange, connecting included in ``timeout``: a server whose accept queue is full (an
        overloaded one) stalls the connect itself, for as long as the kernel retries its SYN."""
        return await asyncio.wait_for(self._exchange(raw), timeout)

    async def _exchange(self, raw: bytes) -> Reply:
        conn = self._take_idle()
        if conn is None:
            conn = await asyncio.open_connection(self.host, self.port)
            self.opened += 1
        reader, writer = conn
        try:
            writer.write(raw)
            reply = await _read_response(reader)
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


def with_pool(host: str, port: int, work: Callable[[Pool], Awaitable[T]]) -> T:
    """``work(pool)`` on a fresh pool of connections to ``host:port``, in its own event loop; the pool is
    closed afterwards."""

    async def go() -> T:
        pool = Pool(host, port)
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(go())


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
    """A POST of a JSON ``body``."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def http_get(host: str, port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


async def _send(
    pool: Pool, raw: bytes, due: float, index: int, timeout_s: float, observe: Callable[[Reply], Any] | None
) -> Outcome:
    """One request, its latency counted from ``due``; an error or timeout is status 0."""
    info = None
    try:
        reply = await pool.request(raw, timeout_s)
        status = reply.status
        if observe is not None:
            info = observe(reply)
    except SEND_ERRORS:
        status = 0
    return Outcome(due, time.monotonic() - due, status, index, info)


# -- the schedules ------------------------------------------------------------------------------------


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


def measured_window(window_s: float, measured_arrivals: int, rate_rps: float) -> float:
    """Seconds to divide the measured work by: at least the offered schedule's length, so a Poisson clump
    finishing early does not show as more throughput than was offered."""
    return max(window_s, measured_arrivals / rate_rps)


def generator_cpu_seconds() -> float:
    """User + system CPU of this process (the generator) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def no_gc_pauses():
    """The generator's own garbage collector off for a measured run. A full collection of its heap takes
    tens of ms on a 2-CPU VM, during which no request is sent or read: the delay would count against
    the server under test. A run is bounded in requests, so what it leaves uncollected is bounded too.
    Enter it before fixing the schedule's start: the collection it begins with takes that long once."""
    if not gc.isenabled():  # an enclosing block already collected and paused it
        yield
        return
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.enable()


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
    """The open loop: send ``requests[i]`` at ``offsets[i]`` seconds (sorted) from ``start``, whatever the
    server does; the first ``n_warm`` are not measured. ``start`` is a ``time.monotonic()`` instant (default:
    50 ms from now), so a caller can time other work against the schedule. Each outcome keeps its schedule
    index and, for a reply, ``observe(reply)``. Ends when every request has an answer, an error or its
    ``timeout_s``: the run is bounded by the last offset plus ``timeout_s``. ``server_cpu()`` (CPU seconds
    of the server) is read over the same measured window as the generator's own CPU."""
    if len(requests) != len(offsets):
        raise ValueError(f"{len(requests)} requests for {len(offsets)} send times")
    lags: list[float] = []

    def cpu_now() -> tuple[float, float | None]:
        return generator_cpu_seconds(), server_cpu() if server_cpu else None

    tasks = []
    with no_gc_pauses():
        start = time.monotonic() + 0.05 if start is None else start
        cpu0 = cpu_now()
        for i, offset in enumerate(offsets):
            due = start + offset
            if (delay := due - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            if i >= n_warm:
                lags.append(time.monotonic() - due)
            tasks.append(asyncio.create_task(_send(pool, requests[i], due, i, timeout_s, observe)))
            if i + 1 == n_warm:  # CPU is counted over the measured part only
                cpu0 = cpu_now()
        outcomes = await asyncio.gather(*tasks)
        cpu1 = cpu_now()
    measured = list(outcomes[n_warm:])
    first = measured[0].scheduled if measured else start
    end = max(o.scheduled + o.latency_s for o in measured) if measured else first
    server_cpu_s = cpu1[1] - cpu0[1] if cpu0[1] is not None and cpu1[1] is not None else None
    return ScheduleRun(measured, end - first, cpu1[0] - cpu0[0], server_cpu_s, max(lags, default=0.0))


async def run_closed_loop(
    pool: Pool,
    requests: Iterable[bytes],
    timeout_s: float,
    gap_s: float = 0.0,
    period_s: float = 0.0,
    observe: Callable[[Reply], Any] | None = None,
    until: Callable[[list[Outcome]], bool] | None = None,
    start: float | None = None,
    limit_s: float = math.inf,
) -> list[Outcome]:
    """The closed loop: one request at a time from ``requests`` (an iterable, so it may be endless), each
    sent after the previous one's answer, at least ``gap_s`` later and ``period_s`` after the previous send.
    Latency is from the actual send. Starts at ``start`` (a ``time.monotonic()`` instant; default now);
    stops when ``requests`` ends, when ``until(outcomes so far)`` is true, or when the next send would be
    ``limit_s`` or more after ``start``."""
    if start is not None:
        await asyncio.sleep(max(0.0, start - time.monotonic()))
    start = time.monotonic() if start is None else start
    outcomes: list[Outcome] = []
    for i, raw in enumerate(requests):
        sent = time.monotonic()
        if sent - start >= limit_s:
            break
        outcomes.append(await _send(pool, raw, sent, i, timeout_s, observe))
        if until is not None and until(outcomes):
            break
        await asyncio.sleep(max(gap_s, period_s - (time.monotonic() - sent)))
    return outcomes


# -- per-step statistics ------------------------------------------------------------------------------


def percentile_ms(latencies_s: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of latencies in seconds, in ms: a value that was measured (no interpolation
    between two requests); infinity when there is none."""
    if not latencies_s:
        return float("inf")
    return float(np.percentile(latencies_s, q, method="higher")) * 1000


def latency_ms(outcomes: Sequence[Outcome], q: float, count_failures: bool = False) -> float:
    """Latency percentile of the successful outcomes; with ``count_failures``, a refused or failed request
    counts as infinitely slow (so more than 1% failures means p99 = inf)."""
    if count_failures:
        return percentile_ms([o.latency_s if o.status == 200 else math.inf for o in outcomes], q)
    return percentile_ms([o.latency_s for o in outcomes if o.status == 200], q)


@dataclass
class RateResult:
    """One offered rate of a single-endpoint load (the benchmark's)."""

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
        """:func:`latency_ms` of this rate's outcomes."""
        return latency_ms(self.outcomes, q, count_failures)

    def meets(self, p99_target_ms: float) -> bool:
        return self.percentile_ms(99, count_failures=True) <= p99_target_ms

    @property
    def generator_cpu_pct(self) -> float:
        return 100 * self.generator_cpu_s / self.wall_s if self.wall_s else 0.0

    @property
    def server_cpu_pct(self) -> float | None:
        return None if self.server_cpu_s is None or not self.wall_s else 100 * self.server_cpu_s / self.wall_s


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


@dataclass
class EndpointStats:
    """One endpoint's share of a mixed schedule."""

    requests: int = 0
    ok: int = 0
    errors: int = 0  # transport errors, timeouts and statuses other than 200 and 503
    sheds: int = 0  # 503
    pairs_s: float = 0.0  # answered pairs per second
    p50_ms: float = math.inf
    p95_ms: float = math.inf
    p99_ms: float = math.inf
    p99_all_ms: float = math.inf  # failures counted as infinitely slow
    cache_hit_share: float | None = None  # cached results / answered pairs
    variants: dict[str, int] = field(default_factory=dict)  # X-AB-Variant of the replies

    @property
    def error_share(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def shed_share(self) -> float:
        return self.sheds / self.requests if self.requests else 0.0


def endpoint_stats(outcomes: Sequence[Outcome], pairs: Sequence[int], wall_s: float) -> EndpointStats:
    """Statistics of one endpoint's measured outcomes; ``pairs[outcome.index]`` is the pairs its request
    asked for, ``outcome.info`` of a 200 is ``(variant, cached)`` (:func:`loadtest.traffic.read_reply`)."""
    stats = EndpointStats(requests=len(outcomes))
    if not outcomes:
        return stats
    ok = [o for o in outcomes if o.status == 200]
    stats.ok = len(ok)
    stats.sheds = sum(o.status == 503 for o in outcomes)
    stats.errors = stats.requests - stats.ok - stats.sheds
    answered = sum(pairs[o.index] for o in ok)
    stats.pairs_s = answered / wall_s if wall_s else 0.0
    stats.p50_ms, stats.p95_ms, stats.p99_ms = (latency_ms(outcomes, q) for q in (50, 95, 99))
    stats.p99_all_ms = latency_ms(outcomes, 99, count_failures=True)
    cached = [o.info[1] for o in ok if o.info and o.info[1] is not None]
    if answered and cached:
        stats.cache_hit_share = sum(cached) / answered
    stats.variants = dict(Counter(o.info[0] or "?" for o in ok if o.info))
    return stats

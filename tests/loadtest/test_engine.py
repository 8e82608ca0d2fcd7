"""The engine keeps to its bounds: the open loop sends exactly the planned count, on schedule, and ends
within the schedule plus the client timeout whatever the server does; the closed loop sends one at a
time and stops when told or at its limit; the readiness wait ends when the server dies."""

from __future__ import annotations

import asyncio
import itertools
import socket
import sys
import time
from pathlib import Path
from typing import Self

import pytest

from loadtest.engine import (
    Pool,
    arrival_offsets,
    http_request,
    planned_count,
    run_closed_loop,
    run_rate,
    run_schedule,
)
from loadtest.servers import free_port, running_server, wait_ready


class FakeServer:
    """A loopback HTTP/1.1 server that counts requests and answers 200 (or never, when ``silent``)."""

    def __init__(self, silent: bool = False) -> None:
        self.silent, self.received = silent, 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self.stop = asyncio.Event()
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.stop.set()
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                self.received += 1
                if self.silent:
                    await self.stop.wait()
                    break
                body = b'{"cached":1}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\nX-AB-Variant: control\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def raw(port: int) -> bytes:
    return http_request("127.0.0.1", port, "/relevance", b'{"query":"q"}')


def test_planned_count_caps_measured_requests():
    assert planned_count(100, duration_s=10, max_requests=50, warmup_s=0.5) == (50, 100)
    assert planned_count(100, duration_s=0.2, max_requests=50, warmup_s=0) == (0, 20)
    assert planned_count(0.5, duration_s=1, max_requests=50, warmup_s=0) == (0, 1)  # at least one


async def test_sends_exactly_the_planned_count_and_no_more():
    async with FakeServer() as server:
        pool = Pool("127.0.0.1", server.port)
        started = time.monotonic()
        # 1000 req/s for 10 s would be 10,000: max_requests caps it at 15 measured + 10 warm-up
        res = await run_rate(pool, [raw(server.port)], 1000, 10, 15, 8, warmup_s=0.01, timeout_s=2)
        elapsed = time.monotonic() - started
        await pool.close()
    assert server.received == 25 and len(res.outcomes) == 15
    assert all(o.status == 200 for o in res.outcomes) and elapsed < 2
    assert res.achieved_pairs_s <= 1000 * 8 * 1.001  # never more than offered


async def test_duration_bounds_the_run():
    async with FakeServer() as server:
        pool = Pool("127.0.0.1", server.port)
        started = time.monotonic()
        res = await run_rate(pool, [raw(server.port)], 40, 0.5, 10_000, 1, "uniform", warmup_s=0, timeout_s=2)
        elapsed = time.monotonic() - started
        await pool.close()
    assert server.received == 20 and len(res.outcomes) == 20
    assert 0.45 < elapsed < 1.5  # 20 sends evenly spaced over 0.5 s


@pytest.mark.timeout(10)  # the server never answers: without the client timeout the run never ends
async def test_a_silent_server_cannot_hold_the_generator_past_its_timeout():
    offsets = arrival_offsets(50, 5, "uniform", 0)  # 0 .. 0.08 s
    timeout_s = 0.3
    async with FakeServer(silent=True) as server:
        pool = Pool("127.0.0.1", server.port)
        started = time.monotonic()
        run = await run_schedule(pool, offsets, [raw(server.port)] * 5, n_warm=1, timeout_s=timeout_s)
        elapsed = time.monotonic() - started
        await pool.close()
    assert [o.status for o in run.outcomes] == [0, 0, 0, 0]  # timeouts count as failures
    assert all(o.latency_s >= timeout_s for o in run.outcomes)
    # Ends within the schedule plus one timeout; the 1 s of slack is for a loaded CI runner, which has
    # overshot by 0.5 s (the generator's own send lag is added, as it delays the last send).
    assert elapsed < offsets[-1] + timeout_s + 1.0 + run.max_send_lag_s


@pytest.mark.timeout(10)  # unbounded, a stalled connect lasts as long as the kernel's SYN retries
async def test_a_server_that_accepts_no_connection_cannot_hold_the_generator_past_its_timeout():
    # An overloaded server whose accept queue is full: the kernel drops new SYNs, so connecting stalls.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # never accepted: the first handshake fills the queue
        port = listener.getsockname()[1]
        first = socket.create_connection(("127.0.0.1", port))
        pool = Pool("127.0.0.1", port)
        started = time.monotonic()
        run = await run_schedule(pool, [0.0, 0.0, 0.01], [raw(port)] * 3, n_warm=0, timeout_s=0.3)
        elapsed = time.monotonic() - started
        await pool.close()
        first.close()
    assert [o.status for o in run.outcomes] == [0, 0, 0]
    assert all(o.latency_s >= 0.3 for o in run.outcomes)
    assert elapsed < 0.01 + 0.3 + 1.0 + run.max_send_lag_s  # as the silent server's bound


async def test_schedule_outcomes_keep_their_index_and_what_observe_read():
    async with FakeServer() as server:
        pool = Pool("127.0.0.1", server.port)
        run = await run_schedule(
            pool,
            [0.0, 0.0, 0.01],
            [raw(server.port)] * 3,
            n_warm=1,
            observe=lambda r: r.headers["x-ab-variant"],
        )
        await pool.close()
    assert [o.index for o in run.outcomes] == [1, 2]
    assert [o.info for o in run.outcomes] == ["control", "control"]
    assert run.generator_cpu_s >= 0 and run.max_send_lag_s < 0.5
    with pytest.raises(ValueError, match="2 requests for 3 send times"):
        await run_schedule(pool, [0, 0, 0], [b"", b""], n_warm=0)


async def test_the_closed_loop_sends_one_at_a_time_and_stops_when_told():
    async with FakeServer() as server:
        pool = Pool("127.0.0.1", server.port)
        started = time.monotonic()
        outcomes = await run_closed_loop(
            pool, [raw(server.port)] * 4, timeout_s=2, gap_s=0.05, observe=lambda r: r.headers["x-ab-variant"]
        )
        elapsed = time.monotonic() - started
        # an endless stream of requests ends at ``until``: here the second answer
        endless = (raw(server.port) for _ in itertools.count())
        two = await run_closed_loop(pool, endless, timeout_s=2, until=lambda done: len(done) == 2)
        await pool.close()
    assert [o.index for o in outcomes] == [0, 1, 2, 3] and {o.info for o in outcomes} == {"control"}
    assert all(o.status == 200 for o in outcomes) and elapsed >= 4 * 0.05
    sends = [o.scheduled for o in outcomes]
    assert all(b - a >= 0.05 for a, b in zip(sends, sends[1:]))  # each after the previous answer and gap
    assert len(two) == 2 and server.received == 6


async def test_the_closed_loop_gives_up_at_its_limit():
    async with FakeServer(silent=True) as server:
        pool = Pool("127.0.0.1", server.port)
        started = time.monotonic()
        endless = (raw(server.port) for _ in itertools.count())
        outcomes = await run_closed_loop(pool, endless, timeout_s=0.1, period_s=0.05, limit_s=0.25)
        elapsed = time.monotonic() - started
        await pool.close()
    assert 2 <= len(outcomes) <= 3 and all(o.status == 0 for o in outcomes)  # timeouts, each 0.1 s
    assert elapsed < 0.25 + 0.1 + 0.3


def test_a_server_that_exits_ends_the_readiness_wait_with_its_log(tmp_path):
    log = tmp_path / "server.log"
    command = [sys.executable, "-c", "print('cannot load the bundle'); raise SystemExit(3)"]
    with pytest.raises(RuntimeError, match="server exited with 3") as err:
        with running_server(command, free_port(), {}, log):
            pass
    assert "cannot load the bundle" in str(err.value)
    with pytest.raises(RuntimeError, match="readyz is not ready"):
        wait_ready(f"http://127.0.0.1:{free_port()}", timeout_s=0)  # nothing listens: asked once


def test_data_defaults_follow_relevance_data(monkeypatch, tmp_path):
    from loadtest.config import BenchConfig, LoadRunConfig, OverloadConfig, RawConfig
    from relevance.data import DEFAULT_DATA_PATH

    monkeypatch.setenv("RELEVANCE_DATA", str(tmp_path / "elsewhere"))
    assert Path(BenchConfig().data) == tmp_path / "elsewhere"
    assert Path(LoadRunConfig(scenario="s.yaml").data) == tmp_path / "elsewhere"
    monkeypatch.delenv("RELEVANCE_DATA")
    for config in (BenchConfig(), RawConfig(), OverloadConfig()):
        assert Path(config.data) == Path(DEFAULT_DATA_PATH)

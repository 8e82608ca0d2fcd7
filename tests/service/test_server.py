"""One real uvicorn process, started the way operators start it (``relevance serve``): it serves,
logs JSON access lines with the request id, and on SIGTERM drains in-flight requests before exiting."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.service.support import body

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server never became ready")


async def drain_while_requests_are_in_flight(url: str, proc: subprocess.Popen) -> list[int]:
    big = body(n=100)  # tiny model, but enough pairs that the replies are still being computed
    patient = {"X-Deadline-Ms": "20000"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        in_flight = [
            asyncio.create_task(
                client.post("/relevance", json={**big, "query": f"drill {i}"}, headers=patient)
            )
            for i in range(8)
        ]
        await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        replies = await asyncio.gather(*in_flight, return_exceptions=True)
    return [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in replies]


def test_real_server_serves_logs_and_drains_on_sigterm(tiny_bundle: Path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEVANCE_")}
    env.update(RELEVANCE_CACHE_ENABLED="false", RELEVANCE_DRAIN_TIMEOUT_S="20")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "relevance.cli",
            "serve",
            "--bundle",
            str(tiny_bundle),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(url, proc)
        reply = httpx.post(f"{url}/relevance", json=body(), headers={"X-Request-Id": "real-1"}, timeout=10)
        assert reply.status_code == 200 and reply.json()["request_id"] == "real-1"
        assert reply.headers["X-Model-Version"] == "0.0.1-test"
        statuses = asyncio.run(drain_while_requests_are_in_flight(url, proc))
        # uvicorn re-raises the signal once shut down, so the parent sees "terminated by SIGTERM"
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read()
    assert statuses == [200] * 8, statuses
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry["logger"] == "relevance.access"]
    assert any(
        e["request_id"] == "real-1" and e["status"] == 200 and e["variant"] == "control" and e["pairs"] == 4
        for e in access
    ), access
    messages = [e["msg"] for e in lines]
    assert "draining" in messages and "Application shutdown complete." in messages, messages
    drained = [e for e in lines[messages.index("draining") :] if e["logger"] == "relevance.access"]
    assert drained and all(e["status"] == 200 for e in drained)  # answered after SIGTERM

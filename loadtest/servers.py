"""The servers under test: started as child processes on a free loopback port, waited for, stopped, and
measured (CPU time, peak memory); or an already running one, checked once. One readiness wait serves both."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from loadtest.engine import LOOPBACK, Outcome, Pool, Reply, http_request, run_closed_loop, with_pool

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# -- service settings ---------------------------------------------------------------------------------


def settings_env(settings: dict[str, Any]) -> dict[str, str]:
    """Service settings as the RELEVANCE_* environment the service reads (lists and dicts as JSON)."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict | list):
            return json.dumps(value)
        return str(value)

    return {f"RELEVANCE_{name.upper()}": text(value) for name, value in settings.items()}


def setting(settings: dict[str, Any], name: str) -> Any:
    """The value of setting ``name`` in a service started with ``settings`` (given there, else its default)."""
    from service.settings import Settings

    return settings.get(name, Settings.model_fields[name].default)


def max_run_pairs(settings: dict[str, Any]) -> int:
    """The ``max_run_pairs`` a service started with ``settings`` plans its runs with."""
    return int(setting(settings, "max_run_pairs"))


# -- processes ----------------------------------------------------------------------------------------


def service_command(bundle: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "relevance.cli",
        "serve",
        "--bundle",
        str(bundle),
        "--host",
        HOST,
        "--port",
        str(port),
    ]


def naive_command(bundle: Path, port: int, intra_op_threads: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "loadtest.naive_server",
        "--bundle",
        str(bundle),
        "--port",
        str(port),
        "--intra-op-threads",
        str(intra_op_threads),
    ]


def wait_ready(
    url: str,
    timeout_s: float,
    attempt_s: float = 1.0,
    proc: subprocess.Popen | None = None,
    log_path: Path | None = None,
) -> None:
    """Until ``{url}/readyz`` answers 200: asked every 0.2 s (each try ``attempt_s`` at most) for
    ``timeout_s`` (0: once). With ``proc``, the server's process: its exit ends the wait with its log."""
    until = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            log = log_path.read_text()[-2000:] if log_path else ""
            raise RuntimeError(f"server exited with {proc.returncode}; its log: {log_path}\n{log}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=attempt_s) as reply:
                if reply.status == 200:
                    return
                status = str(reply.status)
        except urllib.error.HTTPError as err:
            status = str(err.code)
        except OSError as err:
            status = str(err)
        if time.monotonic() >= until:
            break
        time.sleep(0.2)
    if proc is not None:
        raise RuntimeError(f"server not ready after {timeout_s:.0f} s; its log: {log_path}")
    raise RuntimeError(f"{url}/readyz is not ready ({status}): start the service or fix --url")


@contextmanager
def running_server(
    command: list[str], port: int, env: dict[str, str], log_path: Path, ready_timeout_s: float = 120.0
) -> Iterator[subprocess.Popen]:
    """The server, ready (``/readyz`` answers 200); stopped with SIGTERM afterwards. Its output goes to
    ``log_path``: an undrained pipe would block the server once full."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(f"http://{HOST}:{port}", ready_timeout_s, proc=proc, log_path=log_path)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@dataclass(frozen=True)
class Target:
    """Where the load goes: a loopback host and port, a path prefix, and the server's pid when it was
    started here (its CPU is then measured)."""

    host: str
    port: int
    prefix: str = ""  # path prefix before /relevance
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.prefix}"

    @property
    def server_cpu(self) -> Callable[[], float | None] | None:
        pid = self.pid
        return None if pid is None else lambda: process_cpu_seconds(pid)


@contextmanager
def started_server(
    command: Callable[[int], list[str]], env: dict[str, str], log_path: Path
) -> Iterator[Target]:
    """:func:`running_server` of ``command(port)`` on a free loopback port, as a :class:`Target`."""
    port = free_port()
    with running_server(command(port), port, env, log_path) as proc:
        yield Target(HOST, port, "", proc.pid)


def lone_outcomes(bundle: Path, groups: dict[Any, list[bytes]], gap_s: float, log_path: Path,
                  observe: Callable[[Reply], Any] | None = None, warmup: int = 3) -> dict[Any, list[Outcome]]:
    """Lone requests through ``relevance serve`` started here (default settings, result cache off), one
    at a time ``gap_s`` apart; each group's first ``warmup`` bodies are sent untimed, the rest timed."""
    env = settings_env({"log_level": "warning", "cache_enabled": False})
    with started_server(lambda port: service_command(bundle, port), env, log_path) as target:

        async def drive(pool: Pool) -> dict[Any, list[Outcome]]:
            out = {}
            for key, bodies in groups.items():
                requests = [http_request(target.host, target.port, "/relevance", b) for b in bodies]
                await run_closed_loop(pool, requests[:warmup], 10.0, gap_s=gap_s)
                out[key] = await run_closed_loop(pool, requests[warmup:], 10.0, gap_s=gap_s, observe=observe)
            return out

        return with_pool(target.host, target.port, drive)


def parse_url(url: str) -> Target:
    """An already running service's ``--url`` (loopback only)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"--url {url}: expected http://HOST:PORT (plain HTTP)")
    if parts.hostname not in LOOPBACK:
        raise ValueError(
            f"--url {url}: the generator only targets loopback hosts ({', '.join(sorted(LOOPBACK))}); "
            "to load a cluster, `kubectl port-forward svc/<release> 8000:80` and pass "
            "--url http://127.0.0.1:8000"
        )
    return Target(parts.hostname, parts.port or 80, parts.path.rstrip("/"))


# -- measurements of a process ------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a live process, all its threads (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5), after pid and comm
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Peak resident memory of a process, sampled from /proc every ``interval_s`` in a thread."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self.pid, self.interval_s = pid, interval_s
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read_kb(self) -> int:
        try:
            with open(f"/proc/{self.pid}/status") as fh:
                return next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_kb = max(self.peak_kb, self._read_kb())

    def __enter__(self) -> Self:
        self.peak_kb = self._read_kb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, self._read_kb())

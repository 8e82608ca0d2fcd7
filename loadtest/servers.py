"""Start a server under test as a child process on a free loopback port, and read its CPU time."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def add_set_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--set NAME=VALUE`` (repeatable) into ``args.settings``; read it with :func:`parse_settings`."""
    parser.add_argument(
        "--set", dest="settings", action="append", default=[], metavar="NAME=VALUE", help=help_text
    )


def parse_settings(items: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` items (``--set``) as lower-case service setting names -> values."""
    settings = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item}: expected NAME=VALUE")
        settings[name.strip().lower()] = value.strip()
    return settings


def settings_env(settings: dict[str, Any]) -> dict[str, str]:
    """Service settings as the RELEVANCE_* environment the service reads (lists and dicts as JSON)."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict | list):
            return json.dumps(value)
        return str(value)

    return {f"RELEVANCE_{name.upper()}": text(value) for name, value in settings.items()}


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


@contextmanager
def running_server(
    command: list[str], port: int, env: dict[str, str], log_path: Path, ready_timeout_s: float = 120.0
) -> Iterator[subprocess.Popen]:
    """The server, ready (``/readyz`` answers 200); stopped with SIGTERM afterwards. Its output goes to
    ``log_path``: an undrained pipe would block the server once full."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ready(proc, port, ready_timeout_s, log_path)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_ready(proc: subprocess.Popen, port: int, timeout_s: float, log_path: Path) -> None:
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode}; its log: {log_path}\n" + log_path.read_text()[-2000:]
            )
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout_s:.0f} s; its log: {log_path}")


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a live process, all its threads (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5), after pid and comm
    return (utime + stime) / os.sysconf("SC_CLK_TCK")

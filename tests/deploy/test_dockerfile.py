"""The Dockerfile is linted, and what it runs is run here, outside Docker (there is no engine here).

The image's contract: working directory /opt/relevance holding the default bundle at models/default,
no RELEVANCE_* variables, ENTRYPOINT `relevance serve`, port 8000, HEALTHCHECK on /healthz, user
10001. The tests check those facts against the service's own defaults and the chart, then start the
exact ENTRYPOINT + CMD from a working directory laid out like the image's and run the exact
HEALTHCHECK command against it. The only differences from the container: a loopback host and a
free port (RELEVANCE_HOST / RELEVANCE_PORT, as `docker run -e` would set them), the tiny test bundle
in place of the committed default one, and the build's venv being this one.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import httpx
import pytest
import yaml

from tests.deploy.support import (
    CHART,
    DOCKERFILE,
    ROOT,
    clean_env,
    executable,
    free_port,
    relevance_command,
    service_available,
    serving,
    tiny_bundle_or_skip,
)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, instructions with their continuation lines joined."""
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            parts = [p for p in parts if not p.startswith("--")]
            stages.append(Stage(base=parts[0], name=parts[2] if len(parts) > 2 else None))
        elif not stages and keyword == "ARG":
            name, _, default = args.partition("=")
            global_args[name.strip()] = default.strip()
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return global_args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(dockerfile) -> Stage:
    return dockerfile[1][-1]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec (JSON) form: {args}"
    return value


def healthcheck_command(final: Stage) -> list[str]:
    args = final.last("HEALTHCHECK")
    _, _, command = args.partition("CMD ")
    return exec_form(command)


def test_hadolint_passes():
    proc = subprocess.run([executable("hadolint"), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_multi_stage_cpu_and_gpu(dockerfile):
    global_args, stages = dockerfile
    assert global_args["RUNTIME"] == "cpu"
    names = {s.name for s in stages}
    assert {"python-cpu", "python-gpu", "builder", "final"} <= names
    by_name = {s.name: s for s in stages}
    assert by_name["builder"].base == by_name["final"].base == "python-${RUNTIME}"
    assert global_args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert re.match(r"nvidia/cuda:12\.[0-9.]+-cudnn-runtime-", global_args["CUDA_IMAGE"])
    build = " ".join(by_name["builder"].all("RUN"))
    assert "onnxruntime-gpu" in build and "pip uninstall -y onnxruntime" in build


def test_final_stage_is_slim_and_non_root(final):
    text = " ".join(args for _, args in final.instructions)
    for forbidden in ("gcc", "build-essential", "torch", "apt-get install"):
        assert forbidden not in text, f"final stage must not install {forbidden}"
    copies = final.all("COPY")
    assert any(c.startswith("--from=builder /opt/venv") for c in copies)
    user = final.last("USER").split(":")[0]
    assert user.isdigit() and int(user) != 0
    # The chart runs the pod as the image's user.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(user)


def test_entrypoint_and_defaults_match_the_service(final):
    assert exec_form(final.last("ENTRYPOINT")) == ["relevance", "serve"]
    assert exec_form(final.last("CMD")) == []
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^relevance = "relevance\.cli:app"$', pyproject, flags=re.MULTILINE)
    # No RELEVANCE_* baked in: the settings file the chart mounts (or docker run -e) decides.
    assert not any("RELEVANCE_" in env for env in final.all("ENV"))
    workdir = PurePosixPath(final.last("WORKDIR"))
    bundle_copy = next(c for c in final.all("COPY") if "models/default" in c).split()
    assert PurePosixPath(workdir, bundle_copy[-1]) == PurePosixPath("/opt/relevance/models/default")
    expose = int(final.last("EXPOSE").split("/")[0])
    healthcheck = " ".join(healthcheck_command(final))
    assert "/healthz" in healthcheck and "RELEVANCE_PORT" in healthcheck and f"'{expose}'" in healthcheck
    # The chart's default bundle path is the baked one.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["model"]["bundle"] == str(PurePosixPath(workdir, bundle_copy[-1]))
    assert values["containerPort"] == expose

    settings_mod = pytest.importorskip("service.settings", reason="service/settings.py is not there yet")
    defaults = settings_mod.Settings.model_fields
    assert PurePosixPath(workdir, defaults["bundle"].default) == PurePosixPath(workdir, bundle_copy[-1])
    assert defaults["port"].default == expose
    assert defaults["host"].default == "0.0.0.0"


def test_build_context_holds_what_the_image_copies(dockerfile):
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for stage in dockerfile[1]:
        for args in stage.all("COPY"):
            if args.startswith("--from="):
                continue
            sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
            for source in sources:
                assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"
                if source.rstrip("/") == "models/default" and not (ROOT / source).exists():
                    continue  # the default bundle is committed by the export issue
                assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"


BLOCKER = """\
# Written by tests/deploy/test_dockerfile.py: makes this interpreter see only the packages the image
# copies, as in the container (the development venv's editable install maps every project package).
import importlib.abc
import sys

BLOCKED = {blocked!r}


class _NotInImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not copied into the image)", name=name)
        return None


sys.meta_path.insert(0, _NotInImage())
"""


def image_python_path(dockerfile, tmp_path: Path) -> dict[str, str]:
    """Environment additions under which Python sees only what the image has: the project packages the
    builder stage copies (not training/, export/, loadtest/, tests/), and no torch."""
    builder = next(s for s in dockerfile[1] if s.name == "builder")
    copied = {PurePosixPath(shlex.split(c)[0]).name for c in builder.all("COPY")}
    include = re.search(r"^include = \[(.*)\]$", (ROOT / "pyproject.toml").read_text(), flags=re.MULTILINE)
    project = {name.strip(' "*') for name in include.group(1).split(",")} if include else set()
    blocked = sorted((project | {"tests", "torch"}) - copied)
    folder = tmp_path / "image-site"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(BLOCKER.format(blocked=blocked))
    return {"PYTHONPATH": str(folder)}


def test_serving_path_needs_only_what_the_image_copies(dockerfile, tmp_path):
    """`relevance serve` must start from relevance/ and service/ alone: the image has nothing else."""
    service_available()
    env = {**clean_env(), **image_python_path(dockerfile, tmp_path)}
    probe = subprocess.run([sys.executable, "-c", "import training"], env=env, capture_output=True, text=True,
                           timeout=60, cwd=tmp_path)
    assert probe.returncode != 0 and "not copied into the image" in probe.stderr, "the image simulation is off"
    code = ("import relevance.cli, service.server, service.app, sys; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'torch'); sys.exit(f'torch: {bad}' if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, "the serving image could not import its entry point:\n" + proc.stderr[-2000:]
    help_run = subprocess.run(relevance_command() + ["serve", "--help"], env=env, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
    assert help_run.returncode == 0, help_run.stdout[-1000:] + help_run.stderr[-2000:]


def test_image_entrypoint_and_healthcheck_run_outside_docker(dockerfile, final, request, tmp_path):
    """ENTRYPOINT + CMD started from a working directory laid out like the image's, seeing only the
    packages the image has; then the HEALTHCHECK command against it."""
    service_available()
    bundle = tiny_bundle_or_skip(request)
    workdir = tmp_path / "opt-relevance"
    (workdir / "models").mkdir(parents=True)
    (workdir / "models" / "default").symlink_to(bundle, target_is_directory=True)
    port = free_port()
    env = {**clean_env(host="127.0.0.1", port=port), **image_python_path(dockerfile, tmp_path)}
    argv = exec_form(final.last("ENTRYPOINT")) + exec_form(final.last("CMD"))
    argv[0] = str(Path(sys.executable).parent / argv[0])  # the venv's console script, as on the image's PATH
    log = tmp_path / "entrypoint.log"
    base = f"http://127.0.0.1:{port}"
    with serving(argv, f"{base}/readyz", env=env, cwd=workdir, log=log):
        health = healthcheck_command(final)
        health[0] = sys.executable if health[0] == "python" else health[0]
        check = subprocess.run(health, env=env, capture_output=True, text=True, timeout=10)
        assert check.returncode == 0, check.stderr
        r = httpx.post(f"{base}/relevance", timeout=30, json={
            "query": "cordless drill", "services": [{"id": "1", "title": "dewalt cordless drill kit"}]})
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["id"] == "1"
    # HEALTHCHECK fails once the process is gone.
    check = subprocess.run(health, env=env, capture_output=True, text=True, timeout=10)
    assert check.returncode != 0
    assert os.path.islink(workdir / "models" / "default")


def test_serving_file_set_installs_into_a_fresh_venv_and_evaluates(dockerfile, request, catalog_jsonl, tmp_path):
    """The image's file set (the builder stage's COPY sources) installed by pip into a new virtual
    environment without torch: `relevance --help` lists the serving commands and `relevance eval`
    scores a bundle, with no other project package in reach (the working directory is elsewhere)."""
    bundle = tiny_bundle_or_skip(request)
    builder = next(s for s in dockerfile[1] if s.name == "builder")
    source = tmp_path / "src"
    source.mkdir()
    for args in builder.all("COPY"):
        parts = shlex.split(args)
        for name in parts[:-1]:
            if name.startswith("--"):
                continue
            path = ROOT / name
            target = source / path.name
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, target)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python, env = venv / "bin" / "python", {k: v for k, v in clean_env().items() if k != "PYTHONPATH"}
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(source)],
                             capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]
    probe = subprocess.run([str(python), "-c", "import torch"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert probe.returncode != 0, "the serving install must not bring torch"
    relevance = str(venv / "bin" / "relevance")
    listed = subprocess.run([relevance, "--help"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr[-2000:]
    commands = set(re.findall(r"^│ ([a-z][a-z-]*)\s", listed.stdout, flags=re.MULTILINE))
    assert {"serve", "eval"} <= commands and not commands & {"train", "export", "distill", "teacher"}, commands
    scored = subprocess.run([relevance, "eval", str(bundle), "--data", str(catalog_jsonl), "--split", "test"],
                            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert scored.returncode == 0, scored.stdout[-2000:] + scored.stderr[-3000:]
    assert "macro-F1" in scored.stdout

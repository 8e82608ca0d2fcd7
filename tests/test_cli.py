"""The ``relevance`` command line as a whole: what it does around every command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from relevance.cli import app

dist = pytest.importorskip("torch.distributed")


@pytest.fixture
def process_group(tmp_path):
    """A one-rank gloo group in this process, as `accelerate launch` leaves one in each rank."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def _teacher_strength(tmp_path, spec: str) -> list[str]:
    return ["lab", "teacher-strength", "--spec", spec, "--doc", str(tmp_path / "doc.md"), "--plot", ""]


def test_a_command_that_succeeded_releases_the_process_group(tmp_path, process_group):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"teachers": [{
        "name": "t", "teacher_macro_f1": 0.3, "transcribed": {"crsd": [0.32, 0.001, 3], "kd": [0.33, 0.003, 3]},
        "source": "a table",
    }]}))
    (tmp_path / "doc.md").write_text("# doc\n")
    result = CliRunner().invoke(app, _teacher_strength(tmp_path, str(spec)))
    assert result.exit_code == 0, result.output
    assert not dist.is_initialized()


def test_a_command_that_failed_leaves_the_process_group_alone(tmp_path, process_group):
    # other ranks may still be inside a collective: destroying the group then can hang
    result = CliRunner().invoke(app, _teacher_strength(tmp_path, str(tmp_path / "missing.json")))
    assert result.exit_code != 0
    assert dist.is_initialized()

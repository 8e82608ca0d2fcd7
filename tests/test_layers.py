"""The import graph points downward only (issue 17): core at the bottom, stages on it, lab above, the CLI on top.

Every ``import`` and ``from ... import`` in the project's packages is read from the source (also the
lazy ones inside functions: a lazy import is still a dependency), and each must go to the module's
own package or to a lower layer. Two packages of the same layer never import each other, so each
stage can change, or be left out of an install, without the others.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> layer (higher may import lower). relevance.cli is the top layer inside the core's package.
LAYERS = {
    "relevance": 0,  # the inference core: data, labels, metrics, encoding, bundle, annotations, backends, model
    "teacher": 1,
    "training": 1,
    "service": 1,
    "export": 2,  # gated export: runs quantisation-aware checkpoints from training
    "lab": 3,  # benchmarks, profiles, sweeps, comparisons
    "recipes": 3,  # stages chained end to end (annotate -> train -> QAT -> export)
    "loadtest": 3,
    "relevance.cli": 4,
}
PACKAGES = ("relevance", "teacher", "training", "service", "export", "recipes", "lab", "loadtest")


def unit(module: str) -> str | None:
    """The layered unit a dotted module name belongs to (``relevance.cli`` apart from ``relevance``)."""
    if module == "relevance.cli" or module.startswith("relevance.cli."):
        return "relevance.cli"
    top = module.split(".")[0]
    return top if top in LAYERS else None


def project_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every absolute import of a project package in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # "from relevance import cli" names the submodule
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names
                      if node.module == "relevance" and alias.name == "cli"]
    return [(line, name) for line, name in found if unit(name) is not None]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def violations() -> list[str]:
    bad = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else []:
            source = unit(module_name(path))
            for line, target in project_imports(path):
                dest = unit(target)
                if dest == source:
                    continue
                if LAYERS[dest] >= LAYERS[source]:
                    bad.append(f"{path.relative_to(ROOT)}:{line}: {source} (layer {LAYERS[source]}) imports "
                               f"{target} ({dest}, layer {LAYERS[dest]})")
    return bad


def test_imports_point_downward_only():
    assert violations() == []


def test_the_check_sees_lazy_imports(tmp_path):
    """A lazy import inside a function is a dependency too: the reader must catch it."""
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from service.batcher import Batcher\n    import export.pipeline\n")
    assert project_imports(path) == [(2, "service.batcher"), (3, "export.pipeline")]


@pytest.mark.parametrize("name, expected", [("relevance.cli.student", "relevance.cli"), ("relevance.model", "relevance"),
                                            ("training.crsd", "training"), ("numpy", None)])
def test_units(name, expected):
    assert unit(name) == expected


def test_every_project_package_has_a_layer():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name not in {"tests", "scripts"}}
    assert packages <= set(LAYERS), f"packages without a layer: {sorted(packages - set(LAYERS))}"

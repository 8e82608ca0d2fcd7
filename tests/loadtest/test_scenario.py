"""Scenario files: the shipped examples validate, and every kind of mistake names its file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.scenario import ScenarioError, load_scenario, parse_scenario

SCENARIOS = sorted((Path(__file__).parents[2] / "loadtest" / "scenarios").glob("*.*"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_shipped_scenarios_validate(path):
    scenario = load_scenario(path)
    assert scenario.name and scenario.step.p99_target_ms > 0 and scenario.mean_services >= 1


def test_shipped_examples_cover_the_features():
    scenarios = {p.stem: load_scenario(p) for p in SCENARIOS}
    assert len(scenarios) >= 2
    assert any(s.buckets and s.shadow_share > 0 for s in scenarios.values())
    assert any(isinstance(s.services, dict) and s.deadline_ms for s in scenarios.values())


def test_yaml_and_json_read_the_same(tmp_path):
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text(
        "name: mix\nservices: {8: 1, 32: 3}\nbuckets: {a: 1, '': 1}\nshadow_share: 0.1\ndeadline_ms: 80\n"
    )
    json_file = tmp_path / "s.json"
    json_file.write_text(
        json.dumps(
            {
                "name": "mix",
                "services": {"8": 1, "32": 3},
                "buckets": {"a": 1, "": 1},
                "shadow_share": 0.1,
                "deadline_ms": 80,
            }
        )
    )
    a, b = load_scenario(yaml_file), load_scenario(json_file)
    assert a == b
    assert a.services_distribution == {8: 1.0, 32: 3.0} and a.mean_services == pytest.approx(26)
    assert a.max_services == 32 and a.queries.zipf_exponent == 1.0  # defaults fill the rest


def test_overrides_replace_nested_values(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nstep: {duration_s: 10, max_steps: 4}\n")
    scenario = load_scenario(path, {"step": {"duration_s": 2}, "seed": 9})
    assert scenario.step.duration_s == 2 and scenario.step.max_steps == 4 and scenario.seed == 9


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "name: Field required"),
        ({"name": "x", "sevices": 32}, "sevices: Extra inputs are not permitted"),
        ({"name": "x", "services": 0}, "services"),
        ({"name": "x", "services": {"8": -1}}, "weights must not be negative"),
        ({"name": "x", "services": {"8": 0, "16": 0}}, "weights must not all be zero"),
        ({"name": "x", "services": {"0": 1}}, "service counts must be at least 1"),
        ({"name": "x", "buckets": {"a b": 1}}, "visible ASCII"),
        ({"name": "x", "shadow_share": 1.5}, "shadow_share"),
        ({"name": "x", "deadline_ms": 0}, "deadline_ms"),
        ({"name": "x", "queries": {"zipf_exponent": -1}}, "queries.zipf_exponent"),
        ({"name": "x", "queries": {"pool": 0}}, "queries.pool"),
        ({"name": "x", "arrivals": "bursty"}, "arrivals"),
        ({"name": "x", "step": {"max_stepz": 3}}, "step.max_stepz: Extra inputs"),
        ({"name": "x", "step": {"max_total_s": 1}}, "shorter than one step"),
        ({"name": "x", "service_settings": {"max_batch": 3}}, "unknown service settings ['max_batch']"),
    ],
)
def test_validation_errors_name_the_field(raw, message):
    with pytest.raises(ScenarioError, match="^my.yaml: ") as err:
        parse_scenario(raw, source="my.yaml")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("s.yaml", "name: [unclosed", "not valid YAML"),
        ("s.json", "{name: x}", "not valid JSON"),
        ("s.yaml", "- a\n- b\n", "top level must be a mapping"),
        ("s.toml", "name = 'x'", "expected a .yaml, .yml or .json file"),
    ],
)
def test_unreadable_files_say_why(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


def test_missing_file_points_at_the_examples(tmp_path):
    with pytest.raises(ScenarioError, match="loadtest/scenarios"):
        load_scenario(tmp_path / "nope.yaml")

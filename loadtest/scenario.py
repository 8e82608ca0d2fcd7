"""Scenario files of the load-test kit: what traffic to send and how to step its rate.

A scenario is a YAML (``.yaml``/``.yml``) or JSON (``.json``) mapping; every key but ``name`` has a
default, unknown keys are errors. Example (``loadtest/scenarios/`` holds complete ones)::

    name: ab-shadow
    queries: {split: test, pool: 1000, zipf_exponent: 1.0}
    services: {8: 0.3, 32: 0.5, 128: 0.2}   # or a fixed number: 32
    buckets: {a: 0.45, b: 0.45, "": 0.1}    # X-AB-Bucket -> weight; "" sends no header
    shadow_share: 0.05                      # this fraction is also sent to /relevance/shadow
    deadline_ms: 80                         # X-Deadline-Ms on every request (omit: the service default)
    step: {start_pairs_s: 200, step_pairs_s: 100, max_steps: 10, p99_target_ms: 100}
    service_settings: {ab_buckets: {b: candidate}, variants: {candidate: models/default}}

``relevance loadtest run --print-schema`` prints the JSON schema with every field's description.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# X-AB-Bucket travels in a header: visible ASCII only ("" = no header).
BUCKET_PATTERN = r"^[!-~]*$"


class ScenarioError(ValueError):
    """A scenario file that cannot be read or does not validate; the message names the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueryPool(_Strict):
    split: str | None = Field(
        "test", description="split of the data to take queries and products from (null: every row)"
    )
    pool: int = Field(
        1000, gt=0, description="distinct queries in the pool (all of the split's, when it has fewer)"
    )
    zipf_exponent: float = Field(
        1.0,
        ge=0.0,
        le=5.0,
        description="popularity: the query of rank k is drawn with probability proportional to 1/k^s "
        "(0: uniform; about 1 for search traffic); repeats are what the service's cache serves",
    )


class StepPlan(_Strict):
    start_pairs_s: float = Field(200.0, gt=0, description="offered rate of the first step, pairs/s")
    step_pairs_s: float = Field(100.0, gt=0, description="added to the offered rate at each step, pairs/s")
    max_steps: int = Field(10, ge=1, le=100, description="steps at most before refining")
    refine: int = Field(
        2, ge=0, le=10, description="bisection steps between the last good and the first bad rate"
    )
    duration_s: float = Field(10.0, gt=0, le=600, description="measured seconds per step")
    warmup_s: float = Field(2.0, ge=0, le=120, description="unmeasured seconds at each step's rate first")
    pause_s: float = Field(1.0, ge=0, le=60, description="seconds between steps, for queues to drain")
    max_requests: int = Field(3000, gt=0, description="measured requests per step at most")
    timeout_s: float = Field(10.0, gt=0, le=120, description="client timeout per request, seconds")
    max_total_s: float = Field(
        900.0, gt=0, description="time budget of the whole search: no step starts that would end past it"
    )
    p99_target_ms: float = Field(100.0, gt=0, description="a step is good when its p99 is within this")
    max_error_share: float = Field(
        0.01, ge=0, le=1, description="a step is bad above this share of errors (not 200, not 503)"
    )
    max_shed_share: float = Field(0.01, ge=0, le=1, description="a step is bad above this share of 503s")

    @property
    def step_seconds(self) -> float:
        """Roughly what one step takes (a step also waits up to ``timeout_s`` for its last replies)."""
        return self.warmup_s + self.duration_s + self.pause_s


class Scenario(_Strict):
    name: str = Field(min_length=1, description="names the report and the plot")
    description: str = Field("", description="free text, copied into the report")
    queries: QueryPool = Field(default_factory=QueryPool, description="the query pool and its popularity")
    services: int | dict[int, float] = Field(
        32,
        description="services per request: a number, or a distribution {count: weight}; each query keeps "
        "one candidate list (its own rated products first, then others'), a request takes its first N",
    )
    buckets: dict[str, float] = Field(
        default_factory=dict,
        description='A/B bucket mix: X-AB-Bucket value -> weight ("" sends no header); empty: no header',
    )
    shadow_share: float = Field(
        0.0, ge=0, le=1, description="fraction of requests also sent, at the same time, to /relevance/shadow"
    )
    deadline_ms: float | None = Field(
        None, gt=0, description="X-Deadline-Ms sent with every request (null: the service's default)"
    )
    arrivals: Literal["poisson", "uniform"] = Field(
        "poisson", description="inter-arrival times: exponential (open-loop, realistic) or evenly spaced"
    )
    step: StepPlan = Field(default_factory=StepPlan, description="the step search for the max throughput")
    service_settings: dict[str, Any] = Field(
        default_factory=dict,
        description="service settings (names of the service's Settings) used only when the kit starts "
        "the service itself (--bundle), e.g. variants and ab_buckets for an A/B scenario",
    )
    seed: int = Field(0, description="seeds the query ranking, candidate lists, draws and arrival times")

    @field_validator("services")
    @classmethod
    def _services_positive(cls, value: int | dict[int, float]) -> int | dict[int, float]:
        if isinstance(value, int):
            if value < 1:
                raise ValueError("must be at least 1")
            return value
        _check_weights(value)
        if any(count < 1 for count in value):
            raise ValueError(f"service counts must be at least 1, got {sorted(value)}")
        return value

    @field_validator("buckets")
    @classmethod
    def _buckets_valid(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [b for b in value if not re.match(BUCKET_PATTERN, b)]
        if bad:
            raise ValueError(f"bucket names travel in a header, visible ASCII only (no spaces): {bad}")
        if value:
            _check_weights(value)
        return value

    @field_validator("service_settings")
    @classmethod
    def _known_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        from service.settings import Settings

        unknown = sorted(set(value) - set(Settings.model_fields))
        if unknown:
            raise ValueError(f"unknown service settings {unknown} (see docs/service.md, Settings)")
        return value

    @model_validator(mode="after")
    def _one_step_fits(self) -> Scenario:
        if self.step.max_total_s < self.step.step_seconds:
            raise ValueError(
                f"step.max_total_s={self.step.max_total_s:g} is shorter than one step "
                f"({self.step.step_seconds:g} s: warmup + duration + pause)"
            )
        return self

    @property
    def services_distribution(self) -> dict[int, float]:
        return {self.services: 1.0} if isinstance(self.services, int) else dict(self.services)

    @property
    def mean_services(self) -> float:
        dist = self.services_distribution
        return sum(n * w for n, w in dist.items()) / sum(dist.values())

    @property
    def max_services(self) -> int:
        return max(self.services_distribution)


def _check_weights(weights: dict[Any, float]) -> None:
    negative = [k for k, w in weights.items() if w < 0]
    if negative:
        raise ValueError(f"weights must not be negative: {negative}")
    if sum(weights.values()) <= 0:
        raise ValueError("weights must not all be zero")


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read and validate a scenario file; ``overrides`` (nested like the file, e.g. ``{"step":
    {"duration_s": 2}}``) replace its values before validation."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such scenario file (examples: loadtest/scenarios/)")
    if path.suffix not in {".yaml", ".yml", ".json"}:
        raise ScenarioError(f"{path}: expected a .yaml, .yml or .json file")
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:  # json.JSONDecodeError is a ValueError
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise ScenarioError(f"{path}: not valid {kind}: {err}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: the top level must be a mapping of keys (name, queries, services, ...)")
    return parse_scenario(_merge(raw, overrides or {}), source=str(path))


def parse_scenario(raw: dict[str, Any], source: str = "scenario") -> Scenario:
    try:
        return Scenario.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors()
        )
        raise ScenarioError(f"{source}: {problems}") from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out

"""The API contract of ``POST /relevance``: request, response and error bodies, with OpenAPI examples.

Static rules live here (types, required fields, non-empty query). Caps that come from settings
(services per request, characters per field) are checked in :func:`service.scoring.check_limits`,
because a pydantic model is built before the settings are known.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

SERVICE_EXAMPLE = {
    "id": "100001",
    "title": "Simpson Strong-Tie 12-Gauge Angle",
    "brand": "Simpson",
    "description": "Angles make joints stronger and corners straight.",
}

REQUEST_EXAMPLE = {"query": "angle bracket", "services": [SERVICE_EXAMPLE], "request_id": "req-42"}

RESPONSE_EXAMPLE = {
    "request_id": "req-42",
    "model": {"name": "relevance-minilm-l6", "version": "2025.11.27"},
    "variant": "control",
    "results": [
        {
            "id": "100001",
            "score": 0.87,
            "label": "exact",
            "probs": {"irrelevant": 0.02, "partial": 0.11, "exact": 0.87},
        },
    ],
    "cached": 0,
    "latency_ms": 7.9,
}


# Visible ASCII only: the id goes back in a response header and into every log line.
REQUEST_ID_PATTERN = r"^[!-~]{1,128}$"


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain non-whitespace text")
    return value


class ServiceIn(BaseModel):
    """One candidate service. ``id`` and ``title`` are required; any other field must be a string
    (or null) and is used when the bundle's text template names it (e.g. ``brand``, ``description``)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"example": SERVICE_EXAMPLE})
    # Typing the extras makes pydantic reject e.g. ``"brand": 3`` with a 422 naming the field.
    __pydantic_extra__: dict[str, str | None] = Field(init=False)

    id: str = Field(min_length=1, description="the caller's id, echoed in the result")
    title: str = Field(min_length=1, description="service title: always part of the scored text")

    @field_validator("id", "title")
    @classmethod
    def _has_text(cls, value: str) -> str:
        return _non_blank(value)

    def fields(self) -> dict[str, str | None]:
        """All text fields by name, as the bundle's template renders them."""
        return {"id": self.id, "title": self.title, **(self.__pydantic_extra__ or {})}


class RelevanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": REQUEST_EXAMPLE})

    query: str = Field(min_length=1, description="the user's search query")
    services: list[ServiceIn] = Field(
        min_length=1, description="candidates to score; results keep this order"
    )
    request_id: str | None = Field(
        None,
        pattern=REQUEST_ID_PATTERN,
        description="echoed back (and in X-Request-Id); generated when absent",
    )

    @field_validator("query")
    @classmethod
    def _query_has_text(cls, query: str) -> str:
        return _non_blank(query)


class ModelInfo(BaseModel):
    name: str
    version: str


class ScoredService(BaseModel):
    id: str
    score: float = Field(ge=0.0, le=1.0, description="expected gain in [0, 1]: a monotone ranking score")
    label: str = Field(description="most probable class")
    probs: dict[str, float] = Field(description="class probabilities, summing to 1")


class RelevanceResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": RESPONSE_EXAMPLE})

    request_id: str
    model: ModelInfo
    variant: str = Field(description="the variant that scored the request (A/B bucket or shadow)")
    results: list[ScoredService] = Field(description="one per service, in request order")
    cached: int = Field(ge=0, description="how many results came from the cache")
    latency_ms: float = Field(description="time in the service, from arrival to response")


class FieldError(BaseModel):
    field: str = Field(description="where the problem is, e.g. services[3].title or header X-Deadline-Ms")
    message: str


class ErrorResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "error": "deadline_unmeetable",
                "message": "estimated 180 ms of queued work exceeds the 100 ms deadline",
                "request_id": "req-42",
            }
        }
    )

    error: str = Field(
        description="machine-readable code: invalid_input, payload_too_large, deadline_unmeetable, "
        "expired_in_queue, queue_full, not_ready, inference_failed, internal_error"
    )
    message: str
    request_id: str | None = None
    fields: list[FieldError] = Field(default_factory=list, description="the offending fields (422 only)")


class HealthResponse(BaseModel):
    status: str
    variants: dict[str, Any] = Field(default_factory=dict)

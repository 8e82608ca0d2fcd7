"""The API contract of ``POST /relevance``: request, response and error bodies, with OpenAPI examples,
and the request limits.

Static rules live in the models (types, required fields, non-blank text), each expressed in the
OpenAPI schema so that the schema refuses exactly what the service refuses. Caps that come from
settings (services per request, characters per field, body bytes) are :class:`RequestLimits`, beside
the models: a pydantic model is built before the settings are known, so the descriptions name the
caps and their defaults, and :meth:`RequestLimits.check` enforces them on a parsed request (the body
cap before parsing, in :class:`service.middleware.BodyLimitMiddleware`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, StringConstraints
from pydantic_core import core_schema

from relevance.bundle.manifest import field_text
from service.errors import InvalidInput, PayloadTooLarge

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
    "budget": {"source": "default", "ms": 100.0, "bounds": "queue_wait"},
}


@dataclass(frozen=True)
class RequestLimits:
    """Caps on one request, from settings (``max_services``, ``max_field_chars``, ``max_body_bytes``)."""

    max_services: int = 512  # more is 413: the client splits the request
    max_field_chars: int = 8192  # characters per text field; more is 422 naming each field
    max_body_bytes: int = 4 * 1024 * 1024  # more is 413, refused before the body is read

    def check(self, request: RelevanceRequest) -> None:
        """Too many services is 413 (split the request); an over-long field is 422."""
        if len(request.services) > self.max_services:
            raise PayloadTooLarge(
                f"{len(request.services)} services in one request; the limit is {self.max_services}"
            )
        cap = self.max_field_chars
        too_long: list[FieldError] = []
        if len(request.query) > cap:
            too_long.append(FieldError(field="query", message=f"longer than {cap} characters"))
        for i, service in enumerate(request.services):
            for name, value in service.fields().items():
                if value is not None and len(value) > cap:
                    too_long.append(
                        FieldError(field=f"services[{i}].{name}", message=f"longer than {cap} characters")
                    )
        if too_long:
            names = ", ".join(f.field for f in too_long[:5])
            raise InvalidInput(f"text fields over the {cap}-character cap: {names}", too_long)


DEFAULTS = RequestLimits()  # the settings' defaults; the descriptions below name them


# Visible ASCII only: the id goes back in a response header and into every log line.
REQUEST_ID_PATTERN = r"^[!-~]{1,128}$"
# At least one character that is not whitespace (unanchored, as JSON Schema's ``pattern`` is). Not
# plain ``\S``: whitespace differs between regex dialects (ECMA-262, which JSON Schema names, counts
# U+FEFF but not U+0085; Python counts U+001C-U+001F). Excluding the union of them all makes this
# pattern accept exactly the same strings in ECMA-262, Python ``re`` and pydantic's Rust engine.
NON_BLANK = r"[^\s\u001c-\u001f\u0085\ufeff]"

# Clearer messages than "String should match pattern ..." for the 422 ``fields`` list (service.errors).
PATTERN_MESSAGES = {
    NON_BLANK: "must contain non-whitespace text",
    REQUEST_ID_PATTERN: "must be 1 to 128 visible ASCII characters (it is sent back in a header)",
}


class _OneError:
    """Replace a union's per-member errors (``id.int``, ``id.str``, ...) by one error at the field itself."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        schema = handler(source)
        assert schema["type"] == "union", schema["type"]
        return {**schema, "custom_error_type": self.code, "custom_error_message": self.message}


Text = Annotated[str, StringConstraints(min_length=1, pattern=NON_BLANK)]

# Ad backends key services by integers: an id is echoed back with the JSON type it was sent with.
# Strict members: ``true`` is not the id 1, and ``4.0`` is not the id 4.
ServiceId = Annotated[
    StrictInt | Text,
    _OneError("id_type", "must be an integer or a string with non-whitespace text"),
    Field(description="the caller's id, an integer or a non-blank string; echoed in the result as sent"),
]

# Any other field of a service: a JSON scalar. Numbers and booleans are rendered as JSON writes them
# (12.5 -> "12.5", true -> "true") when the bundle's template names the field, and ignored otherwise.
# Objects and arrays are refused (422 naming the field), used or not: they have no one text form the
# model was trained on, and whether a request is valid must not depend on which variant's template
# happens to score it (A/B buckets and the shadow may read different fields).
ExtraField = (
    Annotated[
        StrictStr | StrictInt | Annotated[float, Field(strict=True, allow_inf_nan=False)] | StrictBool,
        _OneError(
            "field_type", "must be a string, a finite number, a boolean or null (not an object or array)"
        ),
    ]
    | None
)


class ServiceIn(BaseModel):
    __doc__ = f"""One candidate service. ``id`` and ``title`` are required. Any other field is a
    string, number, boolean or null (objects and arrays are refused); it is scored when the bundle's
    text template names it (e.g. ``brand``, ``description``), numbers and booleans as their JSON text,
    and ignored otherwise. Each text, rendered numbers included, is at most ``max_field_chars``
    characters (setting, default {DEFAULTS.max_field_chars}; longer is 422)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"example": SERVICE_EXAMPLE})
    __pydantic_extra__: dict[str, ExtraField] = Field(init=False)

    id: ServiceId
    title: Text = Field(description="service title, with non-whitespace text: always part of the scored text")

    def fields(self) -> dict[str, str | None]:
        """Every field as the text the bundle's template renders (null: missing); ``id`` included, so a
        template may name it, but the id as such is never part of a cache key."""
        extra = {name: field_text(value) for name, value in (self.__pydantic_extra__ or {}).items()}
        return {"id": field_text(self.id), "title": self.title, **extra}


class RelevanceRequest(BaseModel):
    __doc__ = f"""Unknown top-level fields are refused (422). ``services`` beyond ``max_services``
    (setting, default {DEFAULTS.max_services}) is 413; ``query`` over ``max_field_chars`` characters
    (default {DEFAULTS.max_field_chars}) is 422."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": REQUEST_EXAMPLE})

    query: Text = Field(
        description="the user's search query, with non-whitespace text; at most `max_field_chars` "
        f"characters (setting, default {DEFAULTS.max_field_chars}; longer is 422)"
    )
    services: list[ServiceIn] = Field(
        min_length=1,
        description="candidates to score, at least one; results keep this order. More than "
        f"`max_services` (setting, default {DEFAULTS.max_services}) is 413",
    )
    request_id: str | None = Field(
        None,
        pattern=REQUEST_ID_PATTERN,
        description="1 to 128 visible ASCII characters; echoed back (and in X-Request-Id); generated "
        "when absent",
    )


class ModelInfo(BaseModel):
    name: str
    version: str


class ScoredService(BaseModel):
    id: StrictInt | StrictStr = Field(description="the service's id as sent: an integer or a string")
    score: float = Field(ge=0.0, le=1.0, description="expected gain in [0, 1]: a monotone ranking score")
    label: str = Field(description="most probable class")
    probs: dict[str, float] = Field(description="class probabilities, summing to 1")


class BudgetInfo(BaseModel):
    source: Literal["header", "default"] = Field(
        description="header: the caller's X-Deadline-Ms; default: the setting default_deadline_ms"
    )
    ms: float = Field(description="the budget in ms, counted from arrival (after clamping to max_deadline_ms)")
    bounds: Literal["response", "queue_wait"] = Field(
        description="response: the answer was due within it; queue_wait: only the wait before compute "
        "started was bounded (no header)"
    )


class RelevanceResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": RESPONSE_EXAMPLE})

    request_id: str
    model: ModelInfo
    variant: str = Field(description="the variant that scored the request (A/B bucket or shadow)")
    results: list[ScoredService] = Field(description="one per service, in request order")
    cached: int = Field(ge=0, description="how many results came from the cache")
    latency_ms: float = Field(description="time in the service, from arrival to response")
    budget: BudgetInfo = Field(description="which latency budget applied to this request")


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


# The error answers of the scoring endpoints, as OpenAPI states them.
SCORING_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {
        "model": ErrorResponse,
        "description": f"more than `max_services` services (setting, default {DEFAULTS.max_services}) or a "
        f"body over `max_body_bytes` (default {DEFAULTS.max_body_bytes // 2**20} MiB)",
    },
    422: {
        "model": ErrorResponse,
        "description": "invalid JSON, missing/empty field, wrong type, field over the "
        "character cap, bad header; `fields` names each problem",
    },
    503: {
        "model": ErrorResponse,
        "description": "refused to keep the latency budget (deadline_unmeetable, "
        "queue_full, expired_in_queue) or not ready; see Retry-After",
    },
}


class AdmissionResponse(BaseModel):
    variants: dict[str, dict[str, Any]] = Field(
        description="per variant: queued_pairs, queue_estimated_ms, slowdown, lone_request_ms, run_profile, ..."
    )


class HealthResponse(BaseModel):
    status: str
    variants: dict[str, Any] = Field(default_factory=dict)

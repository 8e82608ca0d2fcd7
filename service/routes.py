"""HTTP routes: ``POST /relevance``, ``POST /relevance/shadow``, ``/healthz``, ``/readyz``, ``/metrics``.

Handlers only translate HTTP to :class:`~service.scoring.Scorer` calls and back; each states what it
needs through the typed dependencies below.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from service.deadline import Budget
from service.errors import NotReady
from service.metrics import CONTENT_TYPE, ServiceMetrics
from service.runtime import Runtime
from service.schemas import (
    AdmissionResponse,
    ErrorResponse,
    HealthResponse,
    RelevanceRequest,
    RelevanceResponse,
)
from service.scoring import Scored, check_limits
from service.variant import Variant

router = APIRouter()


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise NotReady("models are still loading")
    return runtime


def get_metrics(request: Request) -> ServiceMetrics:
    """Metrics exist before the models load, so a scrape during start-up reads relevance_ready 0."""
    return request.app.state.metrics


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
# Optional headers typed without ``| None``: a header cannot be JSON null, and a nullable schema would
# tell clients (and schemathesis) that the text "null" is a valid value.
BucketHeader = Annotated[str, Header(alias="X-AB-Bucket", description="A/B bucket -> variant (settings)")]
DeadlineHeader = Annotated[
    float,
    Header(
        alias="X-Deadline-Ms",
        gt=0,
        description="the caller's deadline in ms from arrival: the answer is due by then, and work that "
        "cannot make it is refused at once (503). Without it, `default_deadline_ms` bounds only the "
        "time the request waits behind others; its own compute is not bounded",
    ),
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {
        "model": ErrorResponse,
        "description": "more than `max_services` services (setting, default 512) or a body over "
        "`max_body_bytes` (default 4 MiB)",
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


def _probs_json(labels: tuple[str, ...], probs: np.ndarray) -> list[dict[str, float]]:
    return [{label: round(p, 6) for label, p in zip(labels, row, strict=True)} for row in probs.tolist()]


def _response(
    request: Request, body: RelevanceRequest, variant: Variant, scored: Scored, budget: Budget
) -> JSONResponse:
    """Build the JSON by hand: validating our own 512-result answer through pydantic would cost more than
    tokenising it. Its shape is :class:`RelevanceResponse`, which the tests check."""
    scores = variant.scores(scored.probs).clip(0.0, 1.0).tolist()
    top = variant.top_labels(scored.probs).tolist()
    info = variant.model.bundle.manifest
    results = [
        {"id": s.id, "score": round(score, 6), "label": label, "probs": probs}
        for s, score, label, probs in zip(
            body.services, scores, top, _probs_json(variant.labels, scored.probs), strict=True
        )
    ]
    request_id = request.state.request_id
    latency_ms = round((time.monotonic() - request.state.started) * 1000, 3)
    content = {
        "request_id": request_id,
        "model": {"name": info.name, "version": info.version},
        "variant": variant.name,
        "results": results,
        "cached": scored.cached,
        "latency_ms": latency_ms,
        "budget": budget.describe(),
    }
    headers = {"X-Model-Version": info.version, "X-AB-Variant": variant.name, "X-Request-Id": request_id}
    if scored.estimate is not None:
        headers["X-Estimated-Ms"] = f"{scored.estimate.until_scored_s * 1000:.1f}"
    return JSONResponse(content, headers=headers)


async def _score(
    request: Request, body: RelevanceRequest, runtime: Runtime, variant: Variant, deadline_ms: float | None
) -> tuple[JSONResponse, Scored, list[dict[str, Any]]]:
    s = runtime.settings
    request.state.variant = variant.name
    if body.request_id:
        request.state.request_id = body.request_id
    check_limits(body, s.max_services, s.max_field_chars)
    budget = Budget.for_request(deadline_ms, s.default_deadline_ms, s.max_deadline_ms, request.state.started)
    services = [svc.fields() for svc in body.services]
    scored = await runtime.scorer.score(variant, body.query, services, budget)
    request.state.pairs, request.state.cached = len(services), scored.cached
    return _response(request, body, variant, scored, budget), scored, services


@router.post(
    "/relevance",
    response_model=RelevanceResponse,
    responses=_ERRORS,
    tags=["relevance"],
    summary="Score a query against its candidate services",
)
async def relevance(
    body: RelevanceRequest,
    request: Request,
    runtime: RuntimeDep,
    x_ab_bucket: BucketHeader = None,
    x_deadline_ms: DeadlineHeader = None,
) -> JSONResponse:
    """Scores in request order. ``score`` is the expected gain in [0, 1]; ``label`` the most probable class.
    ``X-AB-Bucket`` picks the variant; a sampled fraction is mirrored to the shadow after answering."""
    variant = runtime.variants[runtime.router.route(x_ab_bucket)]
    response, scored, services = await _score(request, body, runtime, variant, x_deadline_ms)
    runtime.mirror.maybe_mirror(variant, body.query, services, scored.probs)
    return response


@router.post(
    "/relevance/shadow",
    response_model=RelevanceResponse,
    responses=_ERRORS,
    tags=["relevance"],
    summary="Score with the shadow variant (mirrored traffic)",
)
async def relevance_shadow(
    body: RelevanceRequest, request: Request, runtime: RuntimeDep, x_deadline_ms: DeadlineHeader = None
) -> JSONResponse:
    """Same contract as ``/relevance``, scored by the shadow variant on its own queue."""
    response, _, _ = await _score(request, body, runtime, runtime.shadow, x_deadline_ms)
    return response


@router.get("/healthz", response_model=HealthResponse, tags=["operations"], summary="Liveness")
async def healthz() -> HealthResponse:
    return HealthResponse(status="alive")


@router.get(
    "/readyz",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse}},
    tags=["operations"],
    summary="Readiness: every configured bundle loaded and warmed up",
)
async def readyz(request: Request) -> JSONResponse:
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    ready = runtime is not None and runtime.ready
    variants = (
        {}
        if runtime is None
        else {
            v.name: {
                "bundle": v.model.bundle.manifest.name,
                "version": v.model.bundle.manifest.version,
                "precision": v.model.precision,
                "queued_pairs": v.batcher.queued_pairs,
            }
            for v in runtime.all_variants()
        }
    )
    body = HealthResponse(status="ready" if ready else "not_ready", variants=variants)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/admission",
    tags=["operations"],
    summary="What admission control believes now (read-only)",
    response_model=AdmissionResponse,
)
async def admission(runtime: RuntimeDep) -> AdmissionResponse:
    """Per variant: the compute queued ahead, the live slowdown against the warm-up run profile, the
    estimated compute of lone requests of 1..256 services, and the profile itself (ms per ORT run by
    pairs x padded length). Why a request was refused can be read here and in the 503's message."""
    return AdmissionResponse(variants={v.name: v.batcher.describe() for v in runtime.all_variants()})


@router.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response)
async def metrics(service_metrics: MetricsDep) -> Response:
    return Response(service_metrics.render(), media_type=CONTENT_TYPE)

"""HTTP routes: ``POST /relevance``, ``POST /relevance/shadow``, ``/healthz``, ``/readyz``, ``/metrics``.

Handlers are thin: validate (the request schemas and their limits), call the
:class:`~service.engine.Engine`, render the answer. Each states what it needs through the typed
dependencies below.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from service.deadline import Budget
from service.engine import Engine
from service.errors import NotReady
from service.metrics import CONTENT_TYPE, ServiceMetrics
from service.schemas import (
    SCORING_ERRORS,
    AdmissionResponse,
    HealthResponse,
    RelevanceRequest,
    RelevanceResponse,
    RequestLimits,
)
from service.scoring import Scored
from service.timing import Timeline
from service.variant import Variant

router = APIRouter()


# The dependencies are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool,
# two thread hand-offs per request that, on cores ORT keeps busy, cost milliseconds each.
async def get_engine(request: Request) -> Engine:
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise NotReady("models are still loading")
    return engine


async def get_limits(request: Request) -> RequestLimits:
    return request.app.state.limits


async def get_metrics(request: Request) -> ServiceMetrics:
    """Metrics exist before the models load, so a scrape during start-up reads relevance_ready 0."""
    return request.app.state.metrics


EngineDep = Annotated[Engine, Depends(get_engine)]
LimitsDep = Annotated[RequestLimits, Depends(get_limits)]
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

class _ResultsJSON(JSONResponse):
    """orjson renders a 512-result answer ~10x faster than the standard library (event-loop time that
    refusals and probes would otherwise wait behind); ints beyond 64 bits, which orjson refuses, take
    the standard path, so any integer id is echoed as sent."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except orjson.JSONEncodeError:
            return super().render(content)


def _rounded(values: np.ndarray) -> list:
    """Six decimals, as Python floats (vectorised: per-value ``round`` cost more than the JSON)."""
    return np.round(values.astype(np.float64), 6).tolist()


def _response(
    request: Request, body: RelevanceRequest, variant: Variant, scored: Scored, budget: Budget, timeline: Timeline
) -> JSONResponse:
    """Build the JSON by hand: validating our own 512-result answer through pydantic would cost more than
    tokenising it. Its shape is :class:`RelevanceResponse`, which the tests check."""
    labels = variant.labels
    scores = _rounded(variant.scores(scored.probs).clip(0.0, 1.0))
    top = variant.top_labels(scored.probs).tolist()
    results = [
        {"id": s.id, "score": score, "label": label, "probs": dict(zip(labels, probs, strict=True))}
        for s, score, label, probs in zip(body.services, scores, top, _rounded(scored.probs), strict=True)
    ]
    info = variant.model.bundle.manifest
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
    response = _ResultsJSON(content, headers=headers)
    done = time.monotonic()
    timeline.mark("respond", done)
    response.headers["Server-Timing"] = timeline.header(done)
    return response


async def _score(
    request: Request,
    body: RelevanceRequest,
    engine: Engine,
    limits: RequestLimits,
    variant: Variant,
    deadline_ms: float | None,
) -> JSONResponse:
    timeline = Timeline(request.state.started)
    timeline.mark("parse")
    request.state.variant = variant.name
    if body.request_id:
        request.state.request_id = body.request_id
    limits.check(body)
    budget = engine.budget(deadline_ms, request.state.started)
    services = [svc.fields() for svc in body.services]
    scored = await engine.score(variant, body.query, services, budget, timeline)
    request.state.pairs, request.state.cached = len(services), scored.cached
    return _response(request, body, variant, scored, budget, timeline)


# What both scoring endpoints declare: one request and response contract, one error table.
SCORING_ROUTE = {"response_model": RelevanceResponse, "responses": SCORING_ERRORS, "tags": ["relevance"]}


@router.post("/relevance", summary="Score a query against its candidate services", **SCORING_ROUTE)
async def relevance(body: RelevanceRequest, request: Request, engine: EngineDep, limits: LimitsDep,
                    x_ab_bucket: BucketHeader = None, x_deadline_ms: DeadlineHeader = None) -> JSONResponse:
    """Scores in request order. ``score`` is the expected gain in [0, 1]; ``label`` the most probable class.
    ``X-AB-Bucket`` picks the variant; a sampled fraction is mirrored to the shadow after answering."""
    variant = engine.variant_for(x_ab_bucket)
    return await _score(request, body, engine, limits, variant, x_deadline_ms)


@router.post("/relevance/shadow", summary="Score with the shadow variant (mirrored traffic)", **SCORING_ROUTE)
async def relevance_shadow(body: RelevanceRequest, request: Request, engine: EngineDep, limits: LimitsDep,
                           x_deadline_ms: DeadlineHeader = None) -> JSONResponse:
    """Same contract as ``/relevance``, scored by the shadow variant on its own queue."""
    return await _score(request, body, engine, limits, engine.shadow, x_deadline_ms)


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
    engine: Engine | None = getattr(request.app.state, "engine", None)
    ready = engine is not None and engine.ready
    variants = (
        {}
        if engine is None
        else {
            v.name: {
                "bundle": v.model.bundle.manifest.name,
                "version": v.model.bundle.manifest.version,
                "precision": v.model.precision,
                "queued_pairs": v.batcher.queued_pairs,
            }
            for v in engine.all_variants()
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
async def admission(engine: EngineDep) -> AdmissionResponse:
    """Per variant: the compute queued ahead, the live slowdown against the warm-up run profile, the
    estimated compute of lone requests of 1..256 services, and the profile itself (ms per ORT run by
    pairs x padded length). Why a request was refused can be read here and in the 503's message."""
    return AdmissionResponse(variants={v.name: v.batcher.describe() for v in engine.all_variants()})


@router.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response)
async def metrics(service_metrics: MetricsDep) -> Response:
    return Response(service_metrics.render(), media_type=CONTENT_TYPE)

"""The API contract of POST /relevance: shape, order, headers, request ids, probes and the OpenAPI."""

from __future__ import annotations

import numpy as np

from service.schemas import RelevanceResponse
from tests.service.support import body, running


async def test_response_follows_the_contract_and_keeps_request_order(make_settings):
    payload = body(n=7, request_id="req-1")
    payload["services"].reverse()  # order must follow the request, whatever the batcher's sorting does
    async with running(make_settings()) as (_, client):
        r = await client.post("/relevance", json=payload)
    assert r.status_code == 200, r.text
    out = RelevanceResponse.model_validate(r.json())
    assert [x.id for x in out.results] == [s["id"] for s in payload["services"]]
    assert out.request_id == "req-1" and r.headers["X-Request-Id"] == "req-1"
    assert out.variant == "control" and r.headers["X-AB-Variant"] == "control"
    assert out.model.version == "0.0.1-test" and r.headers["X-Model-Version"] == "0.0.1-test"
    assert out.cached == 0 and out.latency_ms > 0
    for res in out.results:
        probs = np.array([res.probs[k] for k in ("irrelevant", "partial", "exact")])
        assert abs(probs.sum() - 1) < 1e-4
        assert abs(res.score - probs @ np.array([0.0, 0.5, 1.0])) < 1e-4
        assert res.label == max(res.probs, key=res.probs.get)


async def test_request_id_comes_from_header_or_is_generated(make_settings):
    async with running(make_settings()) as (_, client):
        given = await client.post("/relevance", json=body(), headers={"X-Request-Id": "abc-123"})
        fresh = await client.post("/relevance", json=body())
        hostile = await client.post("/relevance", json=body(), headers={"X-Request-Id": "bad id {}"})
    assert given.json()["request_id"] == "abc-123" == given.headers["X-Request-Id"]
    assert (
        len(fresh.json()["request_id"]) == 32 and fresh.headers["X-Request-Id"] == fresh.json()["request_id"]
    )
    assert hostile.json()["request_id"] != "bad id {}"  # not echoed into logs


async def test_probes(make_settings):
    async with running(make_settings()) as (app, client):
        assert (await client.get("/healthz")).json() == {"status": "alive", "variants": {}}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert set(ready.json()["variants"]) == {"control", "shadow"}
        app.state.runtime.set_ready(False)  # what SIGTERM does before draining
        assert (await client.get("/readyz")).status_code == 503


async def test_openapi_documents_contract_errors_and_examples(make_settings):
    async with running(make_settings()) as (_, client):
        spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/relevance"]["post"]
    assert {"200", "413", "422", "503"} <= set(op["responses"])
    headers = {p["name"] for p in op["parameters"]}
    assert {"X-AB-Bucket", "X-Deadline-Ms"} <= headers
    schemas = spec["components"]["schemas"]
    assert schemas["RelevanceRequest"]["example"]["query"] == "angle bracket"
    assert "example" in schemas["RelevanceResponse"]
    assert "/relevance/shadow" in spec["paths"]

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
        app.state.engine.set_ready(False)  # what SIGTERM does before draining
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


async def test_ids_are_echoed_with_the_json_type_they_were_sent_with(make_settings):
    payload = {
        "query": "cordless drill",
        "services": [{"id": 42, "title": "dewalt drill"}, {"id": "42", "title": "saw"}],
    }
    async with running(make_settings()) as (_, client):
        r = await client.post("/relevance", json=payload)
    assert r.status_code == 200, r.text
    assert [res["id"] for res in r.json()["results"]] == [42, "42"]
    assert isinstance(r.json()["results"][0]["id"], int)


async def test_scalar_fields_are_rendered_when_the_template_uses_them_and_ignored_otherwise(
    make_settings, tiny_bundle
):
    from relevance.bundle import load_bundle

    fields = load_bundle(tiny_bundle).manifest.text.fields
    assert "brand" in fields and "price" not in fields
    base = {"id": "1", "title": "dewalt cordless drill kit"}
    variants = {
        "plain": base,
        "unused number": {**base, "price": 12.5, "in_stock": True, "count": 3},
        "used number": {**base, "brand": 3},
        "used number as text": {**base, "brand": "3"},
    }
    async with running(make_settings(cache_enabled=False)) as (_, client):
        scores = {}
        for name, service in variants.items():
            r = await client.post("/relevance", json={"query": "cordless drill", "services": [service]})
            assert r.status_code == 200, (name, r.text)
            scores[name] = r.json()["results"][0]["score"]
    assert scores["unused number"] == scores["plain"], "fields the template does not name are ignored"
    assert scores["used number"] == scores["used number as text"], "a number is scored as its JSON text"


def test_template_renders_numbers_and_booleans_as_json_text():
    from relevance.bundle.manifest import ServiceTextTemplate, field_text

    values = (12.5, 3, 0, True, False, None, "x")
    assert [field_text(v) for v in values] == ["12.5", "3", "0", "true", "false", None, "x"]
    template = ServiceTextTemplate(fields=("title", "price", "in_stock"))
    rendered = template.render({"title": "drill", "price": 0, "in_stock": False})  # 0 and false are values
    assert rendered == template.separator.join(["drill", "price: 0", "in_stock: false"])


async def test_the_openapi_schema_refuses_what_the_service_refuses(make_settings):
    import re

    async with running(make_settings()) as (_, client):
        schema = (await client.get("/openapi.json")).json()
        blank = await client.post(
            "/relevance", json={"query": "drill", "services": [{"id": "1", "title": " \t "}]}
        )
    service = schema["components"]["schemas"]["ServiceIn"]
    pattern = service["properties"]["title"]["pattern"]
    assert re.search(pattern, " \t ") is None and re.search(pattern, " saw ")
    assert blank.status_code == 422 and blank.json()["fields"][0]["field"] == "services[0].title"
    id_types = {s.get("type") for s in service["properties"]["id"]["anyOf"]}
    assert id_types == {"integer", "string"}


async def test_the_cache_key_does_not_depend_on_the_id(make_settings):
    service = {"title": "dewalt drill", "brand": "dewalt"}
    async with running(make_settings()) as (_, client):
        first = await client.post("/relevance", json={"query": "drill", "services": [{**service, "id": 42}]})
        again = await client.post(
            "/relevance", json={"query": "drill", "services": [{**service, "id": "x-7"}]}
        )
    assert (first.json()["cached"], again.json()["cached"]) == (0, 1)
    assert first.json()["results"][0]["probs"] == again.json()["results"][0]["probs"]
    assert [first.json()["results"][0]["id"], again.json()["results"][0]["id"]] == [42, "x-7"]


async def test_the_openapi_schema_states_every_static_rule(make_settings):
    import re

    async with running(make_settings()) as (_, client):
        schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    service, request = schemas["ServiceIn"], schemas["RelevanceRequest"]
    text_rules = [
        request["properties"]["query"],
        service["properties"]["title"],
        next(s for s in service["properties"]["id"]["anyOf"] if s["type"] == "string"),
    ]
    for rule in text_rules:
        assert rule["minLength"] == 1
        # the same pattern pydantic enforces; blank in every regex dialect, ECMA-262's U+FEFF included
        assert all(
            re.search(rule["pattern"], blank) is None for blank in ("", " \t\n", "\u3000", "\ufeff", "\x1c")
        )
        assert re.search(rule["pattern"], " saw ")
    extras = {s["type"] for s in service["additionalProperties"]["anyOf"]}
    assert extras == {"string", "integer", "number", "boolean", "null"}  # no object, no array
    assert request["additionalProperties"] is False and request["required"] == ["query", "services"]
    assert request["properties"]["services"]["minItems"] == 1
    assert "max_services" in request["properties"]["services"]["description"]
    assert "max_field_chars" in request["properties"]["query"]["description"]
    assert "max_field_chars" in service["description"]

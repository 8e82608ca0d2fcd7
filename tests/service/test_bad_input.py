"""Bad input gets a clear error naming the problem, never a 500, and never hurts other requests."""

from __future__ import annotations

import asyncio

import pytest

from tests.service.support import body, requests_counted, running

TITLE = {"id": "1", "title": "dewalt drill"}

INVALID = [
    # (case, raw body, field the error must name)
    ("invalid JSON", b'{"query": "drill", "services": [', "body"),
    ("not an object", b'["drill"]', "body"),
    ("JSON nested too deep", b"[" * 3000 + b"]" * 3000, "body"),
    ("missing query", {"services": [TITLE]}, "query"),
    ("empty query", {"query": "", "services": [TITLE]}, "query"),
    ("blank query", {"query": "   ", "services": [TITLE]}, "query"),
    ("query not a string", {"query": 5, "services": [TITLE]}, "query"),
    ("missing services", {"query": "drill"}, "services"),
    ("empty services", {"query": "drill", "services": []}, "services"),
    ("services not a list", {"query": "drill", "services": "drill"}, "services"),
    ("missing id", {"query": "drill", "services": [TITLE, {"title": "saw"}]}, "services[1].id"),
    ("missing title", {"query": "drill", "services": [{"id": "1"}]}, "services[0].title"),
    ("empty title", {"query": "drill", "services": [{"id": "1", "title": ""}]}, "services[0].title"),
    ("blank title", {"query": "drill", "services": [{"id": "1", "title": " \t"}]}, "services[0].title"),
    ("blank id", {"query": "drill", "services": [{"id": " ", "title": "saw"}]}, "services[0].id"),
    ("boolean id", {"query": "drill", "services": [{"id": True, "title": "saw"}]}, "services[0].id"),
    ("float id", {"query": "drill", "services": [{"id": 1.5, "title": "saw"}]}, "services[0].id"),
    ("integral float id", {"query": "drill", "services": [{"id": 4.0, "title": "saw"}]}, "services[0].id"),
    ("null id", {"query": "drill", "services": [{"id": None, "title": "saw"}]}, "services[0].id"),
    ("numeric title", {"query": "drill", "services": [{"id": "1", "title": 5}]}, "services[0].title"),
    (
        "title of other whitespace only",  # ideographic space, BOM, a separator control: blank everywhere
        {"query": "drill", "services": [{"id": "1", "title": "\u3000\ufeff\x1c"}]},
        "services[0].title",
    ),
    (
        "NaN extra field",  # Python's JSON parser takes NaN; the contract does not
        b'{"query": "drill", "services": [{"id": "1", "title": "saw", "price": NaN}]}',
        "services[0].price",
    ),
    (
        "object extra field",
        {"query": "drill", "services": [{**TITLE, "brand": {"name": "x"}}]},
        "services[0].brand",
    ),
    ("array extra field", {"query": "drill", "services": [{**TITLE, "tags": ["a"]}]}, "services[0].tags"),
    ("request_id not a string", {"query": "drill", "services": [TITLE], "request_id": 7}, "request_id"),
    (
        "request_id unfit for a header",
        {"query": "drill", "services": [TITLE], "request_id": "a\nb"},
        "request_id",
    ),
    ("request_id not ASCII", {"query": "drill", "services": [TITLE], "request_id": "r\u00e9q"}, "request_id"),
    ("unknown top-level field", {"query": "drill", "service": [TITLE]}, "services"),
]


@pytest.fixture
async def client(make_settings):
    async with running(make_settings(max_services=8, max_field_chars=200, max_body_bytes=16384)) as (_, c):
        yield c


@pytest.mark.parametrize("case, payload, field", INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_requests_get_422_naming_the_field(client, case, payload, field):
    raw = payload if isinstance(payload, bytes) else None
    reply = await client.post(
        "/relevance", content=raw, json=None if raw else payload, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 422, reply.text
    err = reply.json()
    assert err["error"] == "invalid_input" and err["request_id"]
    assert field in [f["field"] for f in err["fields"]], err


@pytest.mark.parametrize(
    "service, message",
    [
        ({"id": True, "title": "saw"}, "must be an integer or a string with non-whitespace text"),
        ({"id": " ", "title": "saw"}, "must be an integer or a string with non-whitespace text"),
        ({"id": "1", "title": " \t"}, "must contain non-whitespace text"),
        ({"id": "1", "title": "saw", "specs": {}}, "must be a string, a finite number, a boolean or null"),
    ],
    ids=["boolean id", "blank id", "blank title", "object field"],
)
async def test_each_problem_is_one_clear_message_at_its_field(client, service, message):
    reply = await client.post("/relevance", json={"query": "drill", "services": [service]})
    assert reply.status_code == 422
    (problem,) = reply.json()["fields"]  # one error, not one per member of a union (id.int, id.str)
    assert problem["field"].startswith("services[0].") and problem["message"].startswith(message), problem


async def test_a_bad_request_id_is_explained_not_shown_as_a_regex(client):
    reply = await client.post("/relevance", json={**body(n=1), "request_id": "a b"})
    assert reply.json()["fields"] == [
        {
            "field": "request_id",
            "message": "must be 1 to 128 visible ASCII characters (it is sent back in a header)",
        }
    ]


async def test_a_body_not_sent_as_json_gets_a_hint(client):
    reply = await client.post(
        "/relevance", content=b'{"query": "drill"}', headers={"content-type": "text/plain"}
    )
    assert reply.status_code == 422 and "Content-Type: application/json" in reply.json()["message"]


async def test_too_many_services_is_413(client):
    reply = await client.post("/relevance", json=body(n=9))
    assert reply.status_code == 413 and reply.json()["error"] == "payload_too_large"
    assert "limit is 8" in reply.json()["message"]


async def test_body_over_the_size_limit_is_413_before_parsing(client):
    big = {"query": "drill", "services": [TITLE], "pad": "x" * 20_000}
    reply = await client.post("/relevance", json=big)
    assert reply.status_code == 413 and reply.json()["error"] == "payload_too_large"


async def test_streamed_body_over_the_size_limit_is_413(client):
    async def chunks():
        for _ in range(20):
            yield b" " * 1000  # no Content-Length: the limit must count bytes as they come

    reply = await client.post("/relevance", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413 and reply.json()["error"] == "payload_too_large"


async def test_fields_over_the_character_cap_are_422_naming_them(client):
    long_text = "steel " * 50  # 300 characters, cap 200
    reply = await client.post(
        "/relevance",
        json={"query": "drill", "services": [TITLE, {"id": "2", "title": "saw", "description": long_text}]},
    )
    assert reply.status_code == 422
    assert [f["field"] for f in reply.json()["fields"]] == ["services[1].description"]
    reply = await client.post("/relevance", json={"query": long_text, "services": [TITLE]})
    assert [f["field"] for f in reply.json()["fields"]] == ["query"]


async def test_long_text_under_the_cap_is_truncated_not_refused(client):
    reply = await client.post(
        "/relevance",
        json={
            "query": "drill " * 30,
            "services": [{"id": "1", "title": "drill " * 33, "description": "hammer " * 28}],
        },
    )
    assert reply.status_code == 200, reply.text


async def test_bad_requests_do_not_disturb_concurrent_good_ones(client):
    good = [body(n=3, start=3 * i) for i in range(4)]
    bad = [{"query": ""}, {"query": "drill", "services": [{"id": 1}]}, b"{not json"]
    replies = await asyncio.gather(
        *(client.post("/relevance", json=p) for p in good),
        *(
            client.post("/relevance", content=p, headers={"content-type": "application/json"})
            if isinstance(p, bytes)
            else client.post("/relevance", json=p)
            for p in bad
        ),
    )
    assert [r.status_code for r in replies] == [200] * 4 + [422] * 3
    counted_422 = await requests_counted(client, "none", "422")
    assert counted_422 == 3


async def test_unknown_path_and_method_get_json_errors(client):
    assert (await client.get("/nope")).json()["error"] == "not_found"
    assert (await client.get("/relevance")).json()["error"] == "method_not_allowed"

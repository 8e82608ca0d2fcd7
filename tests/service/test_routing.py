"""A/B routing: X-AB-Bucket picks the variant; no header or an unknown bucket goes to control, counted."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.service.support import body, requests_counted, running, scrape


async def test_buckets_route_to_variants_and_fallbacks_are_counted(make_settings, tiny_bundle):
    settings = make_settings(
        variants={"candidate": tiny_bundle}, ab_buckets={"a": "control", "b": "candidate"}, precision="fp32"
    )
    async with running(settings) as (_, client):
        by_bucket = {}
        for bucket in ("a", "b", "nope", None):
            headers = {"X-AB-Bucket": bucket} if bucket else {}
            reply = await client.post("/relevance", json=body(), headers=headers)
            assert reply.status_code == 200
            assert reply.json()["variant"] == reply.headers["X-AB-Variant"]
            by_bucket[bucket] = reply.json()["variant"]
        no_header = await scrape(client, "relevance_ab_fallback_total", reason="no_header")
        unknown = await scrape(client, "relevance_ab_fallback_total", reason="unknown_bucket")
        candidate_requests = await requests_counted(client, "candidate", "200")
    assert by_bucket == {"a": "control", "b": "candidate", "nope": "control", None: "control"}
    assert (no_header, unknown, candidate_requests) == (1, 1, 1)


def test_settings_refuse_buckets_naming_unknown_or_reserved_variants(make_settings, tiny_bundle):
    with pytest.raises(ValidationError, match="unknown variants"):
        make_settings(ab_buckets={"b": "candidate"})
    with pytest.raises(ValidationError, match="reserved"):
        make_settings(variants={"shadow": tiny_bundle})

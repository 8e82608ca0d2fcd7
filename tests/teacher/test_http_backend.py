"""The OpenAI-compatible backend against an in-process fake server: answers, label probabilities,
retries on 5xx / 429 / timeouts, no retry on 4xx, concurrency and rate limits, and annotation."""

from __future__ import annotations

import time

import pytest

from relevance.annotations.reader import read_records
from relevance.data import Pair
from teacher.backends.http import HttpBackend, HttpBackendConfig, label_probs_from_logprobs
from teacher.chains.prompts import parse_output
from teacher.steps.annotate import annotate_pairs
from tests.teacher.fakes import FakeOpenAI

DRILL = Pair(id="1", query="cordless drill", service={"title": "Ryobi Drill"}, label="exact")
HOSE = Pair(id="2", query="garden hose", service={"title": "Toilet Seat"}, label="irrelevant")


def backend(server: FakeOpenAI, **kw) -> HttpBackend:
    cfg = dict(base_url=server.base_url, model="fake-teacher", timeout_s=2.0, max_retries=3, backoff_s=0.01,
               backoff_max_s=0.05) | kw
    return HttpBackend(HttpBackendConfig(**cfg))


def test_answers_parse_and_carry_label_probabilities():
    with FakeOpenAI() as server:
        b = backend(server)
        (d,), (h,) = b.complete([DRILL, HOSE])
    assert parse_output(d.text).label == "exact" and parse_output(h.text).label == "irrelevant"
    assert d.error is None
    assert max(d.probs, key=d.probs.get) == "exact" and sum(d.probs.values()) == pytest.approx(1.0)
    assert max(h.probs, key=h.probs.get) == "irrelevant"
    req = server.requests[0]
    assert req["model"] == "fake-teacher" and req["temperature"] == 0.0 and req["logprobs"] is True
    assert [m["role"] for m in req["messages"]] == ["system", "user"]


def test_sampling_sends_temperature_and_n_requests():
    with FakeOpenAI() as server:
        out = backend(server, temperature=0.7).complete([DRILL], sample=True, n=3)
    assert len(out[0]) == 3 and len(server.requests) == 3
    assert all(r["temperature"] == 0.7 for r in server.requests)


@pytest.mark.parametrize("plan", [[("status", 500), ("status", 503)], [("status", 429, 0)], ["not-json"]])
def test_retries_transient_failures(plan):
    with FakeOpenAI(plan) as server:
        b = backend(server)
        ((c,),) = b.complete([DRILL])
    assert c.error is None and parse_output(c.text).ok
    assert b.stats["retries"] == len(plan) and len(server.requests) == len(plan) + 1


def test_gives_up_after_max_retries():
    with FakeOpenAI([("status", 502)] * 10) as server:
        b = backend(server, max_retries=2)
        ((c,),) = b.complete([DRILL])
    assert c.error and "gave up after 3 attempts" in c.error and "502" in c.error
    assert len(server.requests) == 3 and c.text == ""


def test_client_errors_are_not_retried():
    with FakeOpenAI([("status", 400)]) as server:
        ((c,),) = backend(server).complete([DRILL])
    assert "HTTP 400" in c.error and len(server.requests) == 1


def test_timeout_is_retried_then_reported():
    with FakeOpenAI([("sleep", 0.5)]) as server:
        ((c,),) = backend(server, timeout_s=0.15).complete([DRILL])
    assert c.error is None and len(server.requests) == 2
    with FakeOpenAI([("sleep", 0.5)] * 3) as server:
        ((c,),) = backend(server, timeout_s=0.15, max_retries=1).complete([DRILL])
    assert "timeout" in c.error


def test_concurrency_limit():
    pairs = [Pair(id=str(i), query="drill", service={"title": "Drill"}) for i in range(6)]
    with FakeOpenAI([("sleep", 0.15)] * 6) as server:
        backend(server, concurrency=2).complete(pairs)
    assert server.max_in_flight == 2


def test_rate_limit_spaces_request_starts():
    pairs = [Pair(id=str(i), query="drill", service={"title": "Drill"}) for i in range(5)]
    with FakeOpenAI() as server:
        t0 = time.monotonic()
        backend(server, concurrency=5, rate_limit_rps=20).complete(pairs)
        elapsed = time.monotonic() - t0
    gaps = [b - a for a, b in zip(server.start_times, server.start_times[1:])]
    assert elapsed >= 0.2 and min(gaps) >= 0.03


def test_label_probs_from_logprobs_edge_cases():
    assert label_probs_from_logprobs(None) is None
    assert label_probs_from_logprobs([{"token": "no label here", "logprob": -1}]) is None
    split = [{"token": "Label", "logprob": 0}, {"token": ":", "logprob": 0},
             {"token": " irre", "logprob": -0.1, "top_logprobs": [{"token": " irre", "logprob": -0.1},
                                                                    {"token": " part", "logprob": -2.5},
                                                                    {"token": " banana", "logprob": -3}]},
             {"token": "levant", "logprob": 0}]
    p = label_probs_from_logprobs(split)
    assert p["exact"] == 0.0 and p["irrelevant"] > p["partial"] > 0


def test_annotation_through_http(tmp_path):
    pairs = [DRILL, HOSE, Pair(id="3", query="drill bits", service={"title": "Bit Set"})]
    out = tmp_path / "ann.jsonl"
    with FakeOpenAI([("status", 503)]) as server:
        summary = annotate_pairs(backend(server), pairs, out, retries=1, batch_size=2, progress=False)
    records = read_records(out)
    assert summary.ok == 3 and [r["id"] for r in records] == ["1", "2", "3"]
    assert records[0]["teacher"]["label"] == "exact" and records[0]["teacher"]["name"] == "fake-teacher"
    assert records[1]["teacher"]["probs"]["irrelevant"] > 0.5

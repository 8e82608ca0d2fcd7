"""Dynamic batching: concurrent requests share ORT runs, and a batched pair scores as it does alone."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from relevance.bundle import load_bundle
from relevance.model import BundleModel
from service.batcher import plan_runs
from tests.service.support import Backends, body, running, scrape

QUERIES = ["cordless drill", "white primer", "garden hose", "brass faucet valve", "steel hammer", "saw"]


def test_plan_runs_sorts_groups_of_jobs_and_cuts_runs():
    # one big job: sorted on its own; then two small ones pooled into one group
    lengths = [[9, 3, 7, 5], [4, 8], [6, 2]]
    assert plan_runs(lengths, max_run_pairs=4) == [
        [(0, 1), (0, 3), (0, 2), (0, 0)],
        [(2, 1), (1, 0), (2, 0), (1, 1)],
    ]
    assert plan_runs(lengths, max_run_pairs=2, sort_window_pairs=8) == [
        [(2, 1), (0, 1)],
        [(1, 0), (0, 3)],
        [(2, 0), (0, 2)],
        [(1, 1), (0, 0)],
    ]  # one window over all three jobs
    runs = plan_runs(lengths, max_run_pairs=3)
    assert [len(r) for r in runs] == [3, 1, 3, 1]
    assert sorted(ref for run in runs for ref in run) == sorted(
        (s, i) for s, ls in enumerate(lengths) for i in range(len(ls))
    )


@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-5), ("int8", 1e-5)])
async def test_batched_results_equal_scoring_each_pair_alone(
    make_settings, tiny_bundle, precision, tolerance
):
    """Both precisions match to float precision: the INT8 graph quantises activations per token and
    block of 32 channels (MatMulNBits), so a pair's score does not depend on its run-mates (a plain
    quantize_dynamic graph, with one activation scale per tensor per run, would differ by ~1e-3)."""
    backends = Backends()
    settings = make_settings(
        precision=precision,
        cache_enabled=False,
        max_batch_pairs=64,
        max_run_pairs=16,
        default_deadline_ms=5000,
    )
    payloads = [body(q, n=5, start=3 * i) for i, q in enumerate(QUERIES)]
    async with running(settings, backends) as (_, client):
        backends["control"].delay = 0.1  # so concurrent requests pile up and get batched together
        warmup_runs = len(backends["control"].batch_sizes)
        replies = await asyncio.gather(*(client.post("/relevance", json=p) for p in payloads))
    assert max(backends["control"].batch_sizes[warmup_runs:]) > 5, "requests were never combined into one run"

    alone = BundleModel.load(load_bundle(tiny_bundle), precision)
    for payload, reply in zip(payloads, replies, strict=True):
        assert reply.status_code == 200, reply.text
        for service, result in zip(payload["services"], reply.json()["results"], strict=True):
            expected = alone.predict_probs([payload["query"]], [service], batch_size=1)[0]
            got = np.array([result["probs"][k] for k in alone.bundle.manifest.labels])
            assert np.abs(got - expected).max() <= tolerance, (precision, service["id"])


async def test_a_request_larger_than_a_step_spans_steps_and_keeps_order(make_settings):
    settings = make_settings(cache_enabled=False, max_batch_pairs=8, max_run_pairs=4)
    payload = body(n=30)
    async with running(settings) as (_, client):
        reply = await client.post("/relevance", json=payload)
        await asyncio.sleep(0.05)  # the reply may leave before the batcher books its last step
        steps = await scrape(client, "relevance_batch_size_pairs_count", variant="control")
    assert reply.status_code == 200
    assert [r["id"] for r in reply.json()["results"]] == [s["id"] for s in payload["services"]]
    assert steps >= 4  # 30 pairs in steps of at most 8


async def test_a_failing_run_does_not_poison_the_other_requests_of_its_batch(make_settings):
    backends = Backends()
    async with running(make_settings(cache_enabled=False), backends) as (app, client):
        runner = app.state.engine.variants["control"].model
        real_run = runner.run
        poison_id = runner.encoder.tokenizer.token_to_id("rake")  # a word only the poison request has

        def run_failing_on_poison(examples):
            if any(poison_id in ids for ids, _ in examples):
                raise RuntimeError("poisoned")
            return real_run(examples)

        runner.run = run_failing_on_poison
        backends["control"].delay = 0.02
        poison = {"query": "drill", "services": [{"id": "p", "title": "rake"}]}
        replies = await asyncio.gather(
            *(client.post("/relevance", json=p) for p in [body(n=3), poison, body("white primer", n=3)])
        )
    assert [r.status_code for r in replies] == [200, 500, 200]
    assert replies[1].json()["error"] == "inference_failed"

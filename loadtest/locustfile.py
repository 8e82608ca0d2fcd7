"""Locust file for teams that prefer Locust: the same scenario files, queries, buckets and shadow share.

    LOADTEST_SCENARIO=loadtest/scenarios/ab-shadow.yaml LOADTEST_DATA=../shared/data/homedepot \\
        locust -f loadtest/locustfile.py --headless -u 16 -r 4 -t 2m --host http://127.0.0.1:8000

Environment: ``LOADTEST_SCENARIO`` (required) the scenario file; ``LOADTEST_DATA`` the Home Depot
folder or a .jsonl file (default: ``$RELEVANCE_DATA``, else ``../shared/data/homedepot``);
``LOADTEST_USER_RPS`` requests per second each user aims at (default 1). Each request draws a Zipf-popular query, a services count and an
A/B bucket exactly as ``relevance loadtest run`` does (``loadtest.traffic``); the scenario's share is
mirrored to ``/relevance/shadow`` at the same moment, and its deadline header is sent. Locust's
statistics are split by bucket (``/relevance [bucket=a]``); a 503 is a failure named "shed"; the cache
hit share and the variants that answered are printed when the test stops. The step search, and so
``step`` in the scenario, is ``loadtest.run``'s: here the offered rate is users x LOADTEST_USER_RPS.

Locust is closed loop: a user waits for its answer before the next request, so an overloaded server
slows the offered load down (coordinated omission); ``relevance loadtest run`` measures open loop.
Locust is not a dependency of the project: ``pip install locust``.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import sys
from collections import Counter
from pathlib import Path

import gevent
import numpy as np
from locust import FastHttpUser, constant_throughput, events, task

if importlib.util.find_spec("loadtest") is None:  # a checkout without the project installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loadtest.engine import Reply
from loadtest.scenario import load_scenario
from loadtest.traffic import PRIMARY_PATH, SHADOW_PATH, Draw, Traffic, read_reply
from relevance.data import default_data

SCENARIO_ENV, DATA_ENV, USER_RPS_ENV = "LOADTEST_SCENARIO", "LOADTEST_DATA", "LOADTEST_USER_RPS"

if SCENARIO_ENV not in os.environ:
    raise SystemExit(
        f"set {SCENARIO_ENV} to a scenario file, e.g. {SCENARIO_ENV}=loadtest/scenarios/ads-32.yaml"
    )
scenario = load_scenario(os.environ[SCENARIO_ENV])
traffic = Traffic.from_data(scenario, Path(os.environ.get(DATA_ENV) or default_data()))
_user_ids = itertools.count()
_pairs = Counter()  # "answered" and "cached" pairs of primary requests
_variants = Counter()  # X-AB-Variant of answered requests, shadow included
log = logging.getLogger("loadtest")


class RelevanceUser(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get(USER_RPS_ENV, "1")))

    def on_start(self) -> None:
        self.rng = np.random.default_rng(scenario.seed + 7919 * next(_user_ids))

    @task
    def score(self) -> None:
        (draw,) = traffic.draw(self.rng, 1)
        if draw.shadow:  # the mirror leaves with its primary, as a mesh mirror would
            gevent.spawn(self._post, draw, SHADOW_PATH, SHADOW_PATH)
        self._post(draw, PRIMARY_PATH, f"{PRIMARY_PATH} [bucket={draw.bucket or 'none'}]")

    def _post(self, draw: Draw, path: str, name: str) -> None:
        headers = {"Content-Type": "application/json", **traffic.headers(draw)}
        with self.client.post(
            path, data=traffic.body(draw), headers=headers, name=name, catch_response=True
        ) as response:
            if response.status_code == 503:
                response.failure("shed (503)")
                return
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            headers = {k.lower(): v for k, v in response.headers.items()}
            reply = Reply(response.status_code, headers, response.content or b"")
            variant, cached = read_reply(reply) or (None, None)
            _variants[variant or "?"] += 1
            if path == PRIMARY_PATH:
                _pairs["answered"] += draw.services
                _pairs["cached"] += cached or 0


@events.test_stop.add_listener
def _summary(environment, **_kwargs) -> None:
    share = _pairs["cached"] / _pairs["answered"] if _pairs["answered"] else 0.0
    log.info(
        "scenario %s: cache hit share %.1f%% of %d answered pairs; answered by variant %s",
        scenario.name,
        100 * share,
        _pairs["answered"],
        dict(_variants),
    )

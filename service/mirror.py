"""The shadow mirror: a sampled fraction of primary traffic scored again, in the background, by the shadow.

The mirror is built so the shadow can never hurt the primary: mirrored work starts only after the
primary answer is ready, runs as a detached task on the shadow's own batcher and bounded queue, and
every way it can go wrong (queue full, expired, too slow, failing) ends in a counted drop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from service.deadline import Budget
from service.errors import Overloaded
from service.metrics import ServiceMetrics
from service.scoring import Scorer
from service.variant import Variant

log = logging.getLogger(__name__)

DropReason = Literal["queue_full", "error", "timeout", "expired"]


class ShadowMirror:
    def __init__(
        self,
        shadow: Variant,
        scorer: Scorer,
        sample_rate: float,
        deadline_s: float,
        metrics: ServiceMetrics,
        sample: Callable[[], float] = random.random,
    ) -> None:
        self.shadow = shadow
        self.scorer = scorer
        self.sample_rate = sample_rate
        self.deadline_s = deadline_s
        self.metrics = metrics
        self._sample = sample
        self._tasks: set[asyncio.Task[None]] = set()  # strong refs: the loop keeps only weak ones

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def maybe_mirror(
        self, primary: Variant, query: str, services: list[dict[str, Any]], primary_probs: np.ndarray
    ) -> None:
        """Mirror a sampled fraction of primary traffic; returns at once."""
        if self.sample_rate <= 0 or self._sample() >= self.sample_rate:
            return
        task = asyncio.get_running_loop().create_task(self._mirror(primary, query, services, primary_probs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _mirror(
        self, primary: Variant, query: str, services: list[dict[str, Any]], primary_probs: np.ndarray
    ) -> None:
        budget = Budget("mirror", self.deadline_s * 1000, time.monotonic())
        try:
            # Queued work is dropped at the deadline by the batcher; work already running gets a grace
            # period, after which we stop waiting for it (timeout).
            scored = await asyncio.wait_for(
                self.scorer.score(self.shadow, query, services, budget, check_deadline=False),
                self.deadline_s * 1.5,
            )
        except Overloaded as err:
            self._drop("queue_full" if err.reason == "queue_full" else "expired")
        except TimeoutError:
            self._drop("timeout")
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - a failing shadow is counted, never propagated
            log.warning("shadow scoring failed: %s", err)
            self._drop("error")
        else:
            self._compare(primary, primary_probs, scored.probs)

    def _compare(self, primary: Variant, primary_probs: np.ndarray, shadow_probs: np.ndarray) -> None:
        # Compare label names, not indices: a candidate bundle may order its classes differently.
        agree = int((primary.top_labels(primary_probs) == self.shadow.top_labels(shadow_probs)).sum())
        n = len(primary_probs)
        self.metrics.shadow_compared_pairs.labels(agree="true").inc(agree)
        self.metrics.shadow_compared_pairs.labels(agree="false").inc(n - agree)
        diffs = np.abs(primary.scores(primary_probs) - self.shadow.scores(shadow_probs))
        for d in diffs.tolist():
            self.metrics.shadow_score_abs_diff.observe(d)

    def _drop(self, reason: DropReason) -> None:
        self.metrics.shadow_dropped.labels(reason=reason).inc()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

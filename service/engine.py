"""The engine: the one façade the routes call (in the spirit of TEI's ``Infer``, Triton's model manager).

It owns the loaded variants (the primary ones by name and the shadow), picks a request's variant from
its A/B bucket, scores through the :class:`~service.scoring.Scorer` (cache, admission, tokenisation,
batcher) and mirrors a sample of primary traffic to the shadow (:class:`~service.mirror.ShadowMirror`).
:func:`build_engine` loads it from settings in the app's lifespan, which starts it (warm-up) and stops
it after serving.
"""

from __future__ import annotations

import gc
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from service.batcher import BatchLimits
from service.cache import ScoreCache
from service.deadline import Budget
from service.event_loop import LoopLag, nice_other_threads, nice_thread
from service.metrics import ServiceMetrics
from service.mirror import ShadowMirror
from service.scoring import Scored, Scorer
from service.settings import DEFAULT_VARIANT, SHADOW_VARIANT, Settings
from service.timing import Timeline
from service.variant import BackendWrapper, ModelLoader, Variant, build_variant

log = logging.getLogger(__name__)


@dataclass
class Engine:
    settings: Settings
    metrics: ServiceMetrics
    variants: dict[str, Variant]  # primary variants by name; the default is DEFAULT_VARIANT
    shadow: Variant
    scorer: Scorer
    mirror: ShadowMirror
    tokenize_pool: ThreadPoolExecutor
    loop_lag: LoopLag
    ready: bool = False
    warmup_s: dict[str, float] = field(default_factory=dict)

    def all_variants(self) -> list[Variant]:
        return [*self.variants.values(), self.shadow]

    def variant_for(self, bucket: str | None) -> Variant:
        """The primary variant of an ``X-AB-Bucket`` value (``ab_buckets``); the default, counted, when
        the header is absent or names an unknown bucket."""
        if not bucket:
            self.metrics.ab_fallback.labels(reason="no_header").inc()
            return self.variants[DEFAULT_VARIANT]
        name = self.settings.ab_buckets.get(bucket)
        if name is None:
            self.metrics.ab_fallback.labels(reason="unknown_bucket").inc()
            return self.variants[DEFAULT_VARIANT]
        return self.variants[name]

    def budget(self, deadline_ms: float | None, started: float) -> Budget:
        """The caller's ``X-Deadline-Ms`` or, without it, the default budget; both clamped."""
        s = self.settings
        return Budget.for_request(deadline_ms, s.default_deadline_ms, s.max_deadline_ms, started)

    async def score(
        self,
        variant: Variant,
        query: str,
        services: list[dict[str, Any]],
        budget: Budget,
        timeline: Timeline | None = None,
    ) -> Scored:
        """Score on ``variant`` (see :meth:`Scorer.score` for what it raises); a sampled fraction of
        primary traffic is then mirrored to the shadow, in the background."""
        scored = await self.scorer.score(variant, query, services, budget, timeline=timeline)
        if variant is not self.shadow:
            self.mirror.maybe_mirror(variant, query, services, scored.probs)
        return scored

    def set_ready(self, ready: bool) -> None:
        self.ready = ready
        self.metrics.ready.set(1 if ready else 0)

    async def start(self) -> None:
        """Warm every variant (allocation paid, run profile measured), then open the batchers."""
        for v in self.all_variants():
            self.warmup_s[v.name] = await v.batcher.warmup(v.warmup_example())
            v.batcher.start()
            log.info(
                "variant ready",
                extra={
                    "variant": v.name,
                    "bundle": str(v.model.bundle.root),
                    "precision": v.model.precision,
                    "warmup_ms": round(self.warmup_s[v.name] * 1000, 1),
                    "lone_request_ms_at_32_tokens": v.batcher.cost.lone_estimates_ms(32),
                },
            )
        # after warm-up: ORT's pool threads and the batchers' threads exist now; later ones nice themselves
        niced = nice_other_threads(self.settings.worker_nice)
        log.info("worker threads niced", extra={"threads": niced, "nice": self.settings.worker_nice})
        # What start-up built (modules, schemas, tokenizers, models' Python side) is most of the heap and
        # lives as long as the process: frozen, a full collection no longer walks it. Unfrozen, such
        # collections stalled the event loop under overload, and refusals and probes waited them out.
        gc.collect()
        gc.freeze()
        self.loop_lag.start()
        self.metrics.event_loop_lag.set_function(lambda: self.loop_lag.lag_s)
        self.set_ready(True)

    async def stop(self) -> None:
        self.set_ready(False)
        await self.loop_lag.stop()
        await self.mirror.close()
        for v in self.all_variants():
            await v.batcher.stop()
        self.tokenize_pool.shutdown(wait=True)


def batch_limits(settings: Settings, max_queue_pairs: int) -> BatchLimits:
    return BatchLimits(
        max_batch_pairs=settings.max_batch_pairs,
        max_batch_tokens=settings.max_batch_tokens,
        max_run_pairs=settings.max_run_pairs,
        sort_window_pairs=settings.sort_window_pairs,
        max_wait_s=settings.max_wait_ms / 1000,
        arrival_wait_s=settings.arrival_wait_ms / 1000,
        max_queue_pairs=max_queue_pairs,
    )


def build_engine(
    settings: Settings, metrics: ServiceMetrics, wrap_backend: BackendWrapper | None = None
) -> Engine:
    """Load every configured bundle (checksums verified) and assemble the serving objects."""
    started = time.perf_counter()
    loader = ModelLoader(settings.providers, settings.intra_op_threads, settings.ort_allow_spinning)
    primary_limits = batch_limits(settings, settings.max_queue_pairs)
    loop_lag = LoopLag()
    lag = lambda: loop_lag.lag_s
    variants = {
        name: build_variant(name, loader.load(path, settings.precision), primary_limits, metrics, lag)
        for name, path in settings.variant_bundles().items()
    }
    # Without a shadow bundle the default one stands in, so /relevance/shadow works out of the box.
    shadow_model = loader.load(
        settings.shadow_bundle or settings.bundle, settings.shadow_precision or settings.precision
    )
    shadow = build_variant(
        SHADOW_VARIANT, shadow_model, batch_limits(settings, settings.shadow_max_queue_pairs), metrics, lag
    )
    if wrap_backend is not None:
        for v in [*variants.values(), shadow]:
            v.model.backend = wrap_backend(v.name, v.model.backend)
    cache = ScoreCache(settings.cache_size) if settings.cache_enabled else None
    # Two threads: enough to tokenise one request while another's result is written, on a 2-core box.
    pool = ThreadPoolExecutor(
        max_workers=2, thread_name_prefix="tokenize", initializer=nice_thread, initargs=(settings.worker_nice,)
    )
    scorer = Scorer(cache, pool, metrics)
    engine = Engine(
        settings=settings,
        metrics=metrics,
        variants=variants,
        shadow=shadow,
        scorer=scorer,
        mirror=ShadowMirror(
            shadow, scorer, settings.shadow_sample_rate, settings.shadow_deadline_ms / 1000, metrics
        ),
        tokenize_pool=pool,
        loop_lag=loop_lag,
    )
    log.info(
        "bundles loaded",
        extra={
            "seconds": round(time.perf_counter() - started, 2),
            "variants": sorted(engine.variants),
            "shadow": str(shadow.model.bundle.root),
        },
    )
    return engine

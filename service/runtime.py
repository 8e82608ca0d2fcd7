"""Everything the routes need at run time: built from settings in the app's lifespan, torn down after it."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from service.batcher import BatchLimits
from service.cache import ScoreCache
from service.deadline import LoopLag
from service.metrics import ServiceMetrics
from service.priority import nice_other_threads, nice_thread
from service.routing import Router, ShadowMirror
from service.scoring import Scorer
from service.settings import DEFAULT_VARIANT, SHADOW_VARIANT, Settings
from service.variant import BackendWrapper, ModelLoader, Variant, build_variant

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    metrics: ServiceMetrics
    variants: dict[str, Variant]  # primary variants by name; the default is DEFAULT_VARIANT
    shadow: Variant
    router: Router
    scorer: Scorer
    mirror: ShadowMirror
    tokenize_pool: ThreadPoolExecutor
    loop_lag: LoopLag
    ready: bool = False
    warmup_s: dict[str, float] = field(default_factory=dict)

    def all_variants(self) -> list[Variant]:
        return [*self.variants.values(), self.shadow]

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
        max_queue_pairs=max_queue_pairs,
    )


def build_runtime(
    settings: Settings, metrics: ServiceMetrics, wrap_backend: BackendWrapper | None = None
) -> Runtime:
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
    runtime = Runtime(
        settings=settings,
        metrics=metrics,
        variants=variants,
        shadow=shadow,
        router=Router(settings.ab_buckets, DEFAULT_VARIANT, metrics),
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
            "variants": sorted(runtime.variants),
            "shadow": str(shadow.model.bundle.root),
        },
    )
    return runtime

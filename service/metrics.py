"""Every Prometheus metric of the service: names, labels and buckets live here and nowhere else.

Dashboards and alerts are written against these names (documented in docs/service.md), so renaming
one is a breaking change. Each app gets its own registry (tests build many apps in one process).
Request, queue, tokenisation and inference time are kept apart, with the unit in the name (Triton).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

PREFIX = "relevance_"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# fmt: off
# Fine steps between 5 and 250 ms so p99 against a 100 ms budget can be read to within ~10 ms.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.045, 0.05, 0.06, 0.07,
    0.08, 0.09, 0.1, 0.11, 0.12, 0.135, 0.15, 0.175, 0.2, 0.225, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0,
)
# Stage timings (queue, tokenisation, one batcher step) sit below the request latency: finer at the bottom.
STAGE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05,
    0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.5, 1.0, 2.5,
)
BATCH_PAIRS_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
BATCH_TOKENS_BUCKETS = (16, 32, 64, 128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 16384)
SCORE_DIFF_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
# fmt: on


class ServiceMetrics:
    """The service's metrics on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.request_duration = Histogram(
            f"{PREFIX}request_duration_seconds",
            "Time from request arrival to response, by outcome.",
            ["endpoint", "variant", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            f"{PREFIX}queue_wait_seconds",
            "Time a request's pairs waited in the batcher queue.",
            ["variant"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.inference_duration = Histogram(
            f"{PREFIX}inference_duration_seconds",
            "ONNX Runtime time of one batcher step (all its runs).",
            ["variant"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.tokenization_duration = Histogram(
            f"{PREFIX}tokenization_duration_seconds",
            "Tokenisation time of one request's cache misses.",
            ["variant"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.batch_size_pairs = Histogram(
            f"{PREFIX}batch_size_pairs",
            "Pairs per batcher step.",
            ["variant"],
            buckets=BATCH_PAIRS_BUCKETS,
            registry=r,
        )
        self.batch_tokens = Histogram(
            f"{PREFIX}batch_tokens",
            "Padded tokens computed per batcher step (what inference costs).",
            ["variant"],
            buckets=BATCH_TOKENS_BUCKETS,
            registry=r,
        )
        self.queue_depth_pairs = Gauge(
            f"{PREFIX}queue_depth_pairs", "Pairs waiting in the batcher queue.", ["variant"], registry=r
        )
        self.queue_estimated_seconds = Gauge(
            f"{PREFIX}queue_estimated_seconds",
            "Admission's estimate of the compute queued ahead of a new request (running step included).",
            ["variant"],
            registry=r,
        )
        self.cost_slowdown = Gauge(
            f"{PREFIX}cost_slowdown_ratio",
            "Measured / warm-up-profiled seconds of recent ORT runs (1 = as profiled; admission scales "
            "every estimate by it).",
            ["variant"],
            registry=r,
        )
        self.event_loop_lag = Gauge(
            f"{PREFIX}event_loop_lag_seconds",
            "How late the event loop wakes up (recent worst); admission adds it to every estimate.",
            registry=r,
        )
        self.in_flight_requests = Gauge(
            f"{PREFIX}in_flight_requests", "HTTP requests being served.", registry=r
        )
        self.shed = Counter(
            f"{PREFIX}shed_total",
            "Requests refused or dropped to keep the latency budget.",
            ["variant", "reason"],
            registry=r,
        )
        self.cache_hits = Counter(
            f"{PREFIX}cache_hits_total", "Pairs answered from the cache.", ["variant"], registry=r
        )
        self.cache_misses = Counter(
            f"{PREFIX}cache_misses_total", "Pairs not in the cache.", ["variant"], registry=r
        )
        self.ab_fallback = Counter(
            f"{PREFIX}ab_fallback_total",
            "Requests sent to the default variant for want of a known bucket.",
            ["reason"],
            registry=r,
        )
        self.shadow_dropped = Counter(
            f"{PREFIX}shadow_dropped_total",
            "Mirrored requests dropped instead of scored by the shadow.",
            ["reason"],
            registry=r,
        )
        self.shadow_compared_pairs = Counter(
            f"{PREFIX}shadow_compared_pairs_total",
            "Pairs scored by both primary and shadow, by label agreement.",
            ["agree"],
            registry=r,
        )
        self.shadow_score_abs_diff = Histogram(
            f"{PREFIX}shadow_score_abs_diff",
            "|primary score - shadow score| per compared pair.",
            buckets=SCORE_DIFF_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            f"{PREFIX}model_info",
            "Loaded model of each variant (value 1).",
            ["variant", "name", "version", "precision"],
            registry=r,
        )
        self.ready = Gauge(
            f"{PREFIX}ready", "1 when every configured bundle is loaded and warmed up.", registry=r
        )
        self._pre_create_labels()

    def _pre_create_labels(self) -> None:
        """Export fixed-label series at 0 so alerts on rate() work before the first event happens."""
        for reason in ("no_header", "unknown_bucket"):
            self.ab_fallback.labels(reason=reason)
        for reason in ("queue_full", "error", "timeout", "expired"):
            self.shadow_dropped.labels(reason=reason)
        for agree in ("true", "false"):
            self.shadow_compared_pairs.labels(agree=agree)

    def register_variant(self, variant: str, name: str, version: str, precision: str) -> None:
        self.model_info.labels(variant=variant, name=name, version=version, precision=precision).set(1)
        for reason in ("deadline_unmeetable", "expired_in_queue", "queue_full"):
            self.shed.labels(variant=variant, reason=reason)
        self.cache_hits.labels(variant=variant)
        self.cache_misses.labels(variant=variant)
        self.queue_depth_pairs.labels(variant=variant).set(0)

    def render(self) -> bytes:
        return generate_latest(self.registry)

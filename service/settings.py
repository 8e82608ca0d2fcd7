"""Every knob of the service in one ``BaseSettings`` class (env prefix ``RELEVANCE_``).

Sources, highest priority first: arguments (``relevance serve --bundle``), environment variables
(``RELEVANCE_MAX_WAIT_MS=1``; lists and dicts as JSON), an optional YAML or JSON file named by
``RELEVANCE_CONFIG_FILE``, then the defaults below. The defaults are tuned for a 2-core CPU and an
ad-ranking client that sends about 32 services per request (see docs/service.md for the reasoning).
Read it through :func:`get_settings` (cached) so tests can clear or bypass the cache.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from relevance.bundle.manifest import Precision
from service.schemas import DEFAULTS, RequestLimits

ENV_PREFIX = "RELEVANCE_"
CONFIG_FILE_ENV = f"{ENV_PREFIX}CONFIG_FILE"
DEFAULT_VARIANT = "control"
SHADOW_VARIANT = "shadow"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    # --- models -------------------------------------------------------------------------------
    bundle: Path = Field(Path("models/default"), description="bundle folder of the default variant 'control'")
    precision: Precision | None = Field(
        None, description="graph every primary variant runs (fp32|int8|fp16); default: each bundle's"
    )
    providers: list[str] = Field(["cpu"], description="ORT execution providers in order: cpu, cuda, tensorrt")
    intra_op_threads: int = Field(0, ge=0, description="ORT threads per inference run; 0 = one per core")
    ort_allow_spinning: bool = Field(
        False, description="let idle ORT threads spin; off so they do not steal the event loop's core"
    )
    worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="nice value of the inference and tokenisation threads, so the event loop (parsing, "
        "refusals, probes) runs first when the cores are saturated; 0 = same priority (Linux only)",
    )
    variants: dict[str, Path] = Field(
        default_factory=dict, description="extra A/B variants: name -> bundle folder ('control' is `bundle`)"
    )
    ab_buckets: dict[str, str] = Field(default_factory=dict, description="X-AB-Bucket value -> variant name")

    # --- batching -----------------------------------------------------------------------------
    max_batch_pairs: int = Field(64, gt=0, description="most pairs one batcher step takes from the queue")
    max_batch_tokens: int = Field(4096, gt=0, description="most (unpadded) tokens one batcher step takes")
    max_run_pairs: int = Field(
        16,
        gt=0,
        description="pairs per ORT run: a length-sorted step is cut into runs this big to cut padding",
    )
    sort_window_pairs: int = Field(
        0,
        ge=0,
        description="pairs of consecutive requests length-sorted together (0: max_run_pairs); wider pads less "
        "but makes the first request of a window wait for all of it",
    )
    max_wait_ms: float = Field(
        2.0, ge=0, description="how long the batcher waits to fill an ORT run with the pairs of requests "
        "still being tokenised (a lone request does not wait)"
    )
    arrival_wait_ms: float = Field(
        0.0, ge=0, description="how long it also waits for requests not yet received (0: none; on a GPU, "
        "raise it to fill steps, as Triton's max_queue_delay)"
    )
    max_queue_pairs: int = Field(
        1024, gt=0, description="queued pairs per variant beyond which requests get 503"
    )

    # --- latency budget and limits --------------------------------------------------------------
    default_deadline_ms: float = Field(
        100.0,
        gt=0,
        description="without an X-Deadline-Ms header: how long a request may wait behind others before "
        "its compute starts (its own compute is not bounded, so a lone request of any size is answered)",
    )
    max_deadline_ms: float = Field(
        60_000.0, gt=0, description="X-Deadline-Ms values above this are clamped to it"
    )
    max_services: int = Field(
        DEFAULTS.max_services, gt=0, description="services per request beyond which the answer is 413"
    )
    max_body_bytes: int = Field(
        DEFAULTS.max_body_bytes, gt=0, description="request body size beyond which 413"
    )
    max_field_chars: int = Field(
        DEFAULTS.max_field_chars, gt=0, description="characters per text field beyond which 422"
    )

    # --- cache ----------------------------------------------------------------------------------
    cache_enabled: bool = Field(True, description="LRU cache of scored (query, service text) pairs")
    cache_size: int = Field(100_000, ge=0, description="pairs the cache keeps (about 0.5 KB each)")

    # --- shadow ---------------------------------------------------------------------------------
    shadow_bundle: Path | None = Field(None, description="bundle of the shadow variant; default: `bundle`")
    shadow_precision: Precision | None = Field(None, description="graph of the shadow bundle to run")
    shadow_sample_rate: float = Field(0.0, ge=0.0, le=1.0, description="fraction of primary traffic mirrored")
    shadow_max_queue_pairs: int = Field(256, gt=0, description="queued mirrored pairs beyond which they drop")
    shadow_deadline_ms: float = Field(1000.0, gt=0, description="mirrored work older than this is dropped")

    # --- process --------------------------------------------------------------------------------
    host: str = Field("0.0.0.0", description="interface to bind")
    port: int = Field(8000, ge=0, le=65535, description="port to bind")
    drain_timeout_s: float = Field(
        10.0, ge=0, description="on SIGTERM, how long in-flight requests may finish"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="log level")

    @model_validator(mode="after")
    def _routes_resolve(self) -> Settings:
        """Fail at start-up, not on the first request, when a bucket names a variant that does not exist."""
        reserved = {DEFAULT_VARIANT, SHADOW_VARIANT} & set(self.variants)
        if reserved:
            raise ValueError(
                f"variant names {sorted(reserved)} are reserved: 'control' is `bundle`, 'shadow' is "
                "`shadow_bundle`"
            )
        known = {DEFAULT_VARIANT, *self.variants}
        unknown = {b: v for b, v in self.ab_buckets.items() if v not in known}
        if unknown:
            raise ValueError(f"ab_buckets name unknown variants {unknown}; known variants: {sorted(known)}")
        return self

    def request_limits(self) -> RequestLimits:
        return RequestLimits(
            max_services=self.max_services,
            max_field_chars=self.max_field_chars,
            max_body_bytes=self.max_body_bytes,
        )

    def variant_bundles(self) -> dict[str, Path]:
        """Primary variants in routing order: the default first."""
        return {DEFAULT_VARIANT: self.bundle, **self.variants}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        file_source = _config_file_source(settings_cls)
        return (init_settings, env_settings, *([file_source] if file_source else []))


def _config_file_source(settings_cls: type[BaseSettings]) -> PydanticBaseSettingsSource | None:
    """The file named by RELEVANCE_CONFIG_FILE, if any; a missing file is an error, not a silent default."""
    name = os.environ.get(CONFIG_FILE_ENV)
    if not name:
        return None
    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{CONFIG_FILE_ENV}={name}: no such file")
    if path.suffix in {".yaml", ".yml"}:
        try:
            import yaml  # noqa: F401  (pydantic-settings needs it; say so before it fails obscurely)
        except ImportError:
            raise RuntimeError(
                f"{CONFIG_FILE_ENV} is YAML but PyYAML is not installed: pip install pyyaml"
            ) from None
        return YamlConfigSettingsSource(settings_cls, yaml_file=path)
    if path.suffix == ".json":
        return JsonConfigSettingsSource(settings_cls, json_file=path)
    raise ValueError(f"{CONFIG_FILE_ENV}={name}: expected a .yaml, .yml or .json file")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once (tests call ``get_settings.cache_clear()`` or build their own)."""
    return Settings()

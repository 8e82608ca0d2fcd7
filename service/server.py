"""``serve()``: run the app under uvicorn, one process, draining in-flight requests on SIGTERM.

One process on purpose: each worker would load its own copy of every model and their ORT thread
pools would fight over the same cores; batching inside one process is what uses them well.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import FastAPI

from service.app import create_app
from service.logs import configure_logging
from service.settings import Settings, get_settings

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT, report not-ready at once (load balancers stop sending), then let uvicorn stop
    accepting and wait up to ``timeout_graceful_shutdown`` for in-flight requests."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        engine = getattr(self._app.state, "engine", None)
        if engine is not None and engine.ready:
            engine.set_ready(False)
            log.info(
                "draining", extra={"signal": sig, "drain_timeout_s": self.config.timeout_graceful_shutdown}
            )
        super().handle_exit(sig, frame)


def resolve_settings(
    bundle: Path | None = None, host: str | None = None, port: int | None = None
) -> Settings:
    """Settings from env/file, with the command line's explicit values on top."""
    settings = get_settings()
    overrides = {k: v for k, v in {"bundle": bundle, "host": host, "port": port}.items() if v is not None}
    return Settings.model_validate({**settings.model_dump(), **overrides}) if overrides else settings


def serve(bundle: Path | None = None, host: str | None = None, port: int | None = None) -> None:
    # A request's few dozen texts tokenise fastest on one thread; the tokenizer's own worker pool would
    # only spin on the cores ORT needs. Set TOKENIZERS_PARALLELISM=true to override.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    settings = resolve_settings(bundle, host, port)
    configure_logging(settings.log_level)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # configure_logging already did
        access_log=False,  # ours carries the request id and variant
        timeout_graceful_shutdown=settings.drain_timeout_s,
        lifespan="on",
    )
    DrainingServer(config, app).run()

"""Teacher backend over an OpenAI-compatible ``POST {base_url}/chat/completions`` endpoint.

What vLLM, TGI and the llama.cpp server expose, so annotation scales to any GPU fleet that serves
the trained teacher (base + merged adapters). Per request: a concurrency limit (semaphore), an
optional start-rate limit (requests per second), a timeout, and retries with exponential backoff
and jitter on timeouts, connection errors, 429 and 5xx (``Retry-After`` honoured, capped by
``backoff_max_s``). Other 4xx fail at once. A request that still fails comes back as a
:class:`~teacher.backends.base.Completion` with ``error`` set, which annotation treats like
a malformed output (retried, then recorded as failed).

Label probabilities: with ``top_logprobs > 0`` the request asks for ``logprobs``; the token
after ``Label:`` and its alternatives give ``p(c)`` (alternatives that start a label word are
summed per label, then normalised over the labels seen). Servers without logprobs give ``None``.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from relevance.data import Pair
from relevance.labels import LABELS
from teacher.backends.base import Completion, PromptedBackend, ends_with_label_prefix, softmax
from teacher.chains.prompts import PromptTemplate

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass
class HttpBackendConfig:
    """An OpenAI-compatible ``/chat/completions`` server (vLLM, TGI, llama.cpp server, ...)."""

    base_url: str = field(default="http://localhost:8000/v1", metadata={"help": "server URL up to /v1"})
    model: str = field(default="", metadata={"help": "model name sent in each request"})
    name: str = field(default="", metadata={"help": "teacher name written into records ('' = model)",
                                            "cli_name": "teacher_name"})  # cli_name: the option in `relevance annotate`
    version: str = field(default="http", metadata={"help": "teacher version written into records",
                                                   "cli_name": "teacher_version"})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "environment variable holding the key"})
    concurrency: int = field(default=8, metadata={"help": "requests in flight at once"})
    timeout_s: float = field(default=60.0, metadata={"help": "per-request timeout (connect + read)"})
    max_retries: int = field(default=4, metadata={"help": "retries after a timeout, connection error, 429 or 5xx",
                                                  "cli_name": "max_http_retries"})
    backoff_s: float = field(default=1.0, metadata={"help": "first retry delay; doubles each retry (with jitter)"})
    backoff_max_s: float = field(default=30.0, metadata={"help": "longest retry delay (also caps Retry-After)"})
    rate_limit_rps: float = field(default=0.0, metadata={"help": "max requests started per second (0 = no limit)"})
    max_tokens: int = field(default=96, metadata={"help": "max tokens per completion"})
    temperature: float = field(default=0.8, metadata={"help": "temperature when sampling (greedy sends 0)"})
    top_logprobs: int = field(default=5, metadata={"help": "alternatives per token for label probabilities (0 = off)"})

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.timeout_s <= 0 or self.max_retries < 0:
            raise ValueError("concurrency >= 1, timeout_s > 0 and max_retries >= 0 required")
        if self.rate_limit_rps < 0 or self.backoff_s < 0:
            raise ValueError("rate_limit_rps and backoff_s must be >= 0")


class HttpBackendError(RuntimeError):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class RateLimiter:
    """Spaces request starts at least ``1 / rps`` seconds apart (no limit when rps == 0)."""

    def __init__(self, rps: float):
        self.interval = 1.0 / rps if rps > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


class HttpBackend(PromptedBackend):
    def __init__(self, cfg: HttpBackendConfig, template: PromptTemplate | None = None,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.cfg = cfg
        self.template = template or PromptTemplate()
        self.name = cfg.name or cfg.model or "http-teacher"
        self.version = cfg.version
        self._transport = transport
        self.stats = {"requests": 0, "retries": 0, "failures": 0}

    # -- public ---------------------------------------------------------------------------------
    def complete(self, pairs: Sequence[Pair], *, sample: bool = False, n: int = 1,
                 hints: Sequence[str | None] | None = None, want_probs: bool = True) -> list[list[Completion]]:
        hints = hints or [None] * len(pairs)
        jobs = [self.template.messages(p, h) for p, h in zip(pairs, hints)]
        flat = asyncio.run(self._run_all([m for m in jobs for _ in range(n)], sample, want_probs))
        return [flat[i * n:(i + 1) * n] for i in range(len(pairs))]

    # -- internals ------------------------------------------------------------------------------
    async def _run_all(self, jobs: list[list[dict]], sample: bool, want_probs: bool) -> list[Completion]:
        sem = asyncio.Semaphore(self.cfg.concurrency)
        limiter = RateLimiter(self.cfg.rate_limit_rps)
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.cfg.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = httpx.Timeout(self.cfg.timeout_s)
        async with httpx.AsyncClient(base_url=self.cfg.base_url.rstrip("/"), headers=headers, timeout=timeout,
                                     transport=self._transport) as client:

            async def one(messages: list[dict]) -> Completion:
                async with sem:
                    try:
                        body = await self._post(client, limiter, self._payload(messages, sample, want_probs))
                    except HttpBackendError as err:
                        self.stats["failures"] += 1
                        return Completion("", None, error=str(err))
                return completion_from_response(body)

            return list(await asyncio.gather(*(one(m) for m in jobs)))

    def _payload(self, messages: list[dict], sample: bool, want_probs: bool) -> dict:
        payload = {"model": self.cfg.model, "messages": messages, "max_tokens": self.cfg.max_tokens,
                   "temperature": self.cfg.temperature if sample else 0.0, "n": 1}
        if want_probs and self.cfg.top_logprobs > 0:
            payload |= {"logprobs": True, "top_logprobs": self.cfg.top_logprobs}
        return payload

    async def _post(self, client: httpx.AsyncClient, limiter: RateLimiter, payload: dict) -> dict:
        last = "no attempt"
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                self.stats["retries"] += 1
            await limiter.wait()
            self.stats["requests"] += 1
            retry_after = None
            try:
                resp = await client.post("/chat/completions", json=payload)
            except httpx.TimeoutException:
                last = f"timeout after {self.cfg.timeout_s:g} s"
            except httpx.TransportError as err:
                last = f"connection error: {type(err).__name__}"
            else:
                if resp.status_code == 200:
                    try:
                        return resp.json()
                    except ValueError:
                        last = "200 with a body that is not JSON"
                elif resp.status_code in RETRY_STATUSES:
                    last = f"HTTP {resp.status_code}"
                    retry_after = _retry_after(resp.headers.get("retry-after"))
                else:
                    raise HttpBackendError(f"HTTP {resp.status_code}: {resp.text[:200]}", resp.status_code)
            if attempt < self.cfg.max_retries:
                await asyncio.sleep(self._delay(attempt, retry_after))
        raise HttpBackendError(f"gave up after {self.cfg.max_retries + 1} attempts: {last}")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cfg.backoff_max_s)
        base = min(self.cfg.backoff_s * 2 ** attempt, self.cfg.backoff_max_s)
        return base * (0.5 + random.random() / 2)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def completion_from_response(body: dict) -> Completion:
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        return Completion("", None, error="response without choices[0].message.content")
    return Completion(text, label_probs_from_logprobs((choice.get("logprobs") or {}).get("content")))


def label_probs_from_logprobs(content: list[dict] | None) -> dict[str, float] | None:
    """``p(c)`` at the token right after ``Label:`` from OpenAI-style ``logprobs.content``."""
    if not content:
        return None
    text = ""
    found = None
    for entry in content:
        token = entry.get("token", "")
        word = token.strip().lower()
        if word and ends_with_label_prefix(text) and any(lbl.startswith(word) for lbl in LABELS):
            found = entry
        text += token
    if found is None:
        return None
    per_label: dict[str, list[float]] = {}
    alternatives = found.get("top_logprobs") or [{"token": found["token"], "logprob": found["logprob"]}]
    for alt in alternatives:
        word = alt.get("token", "").strip().lower()
        matches = [lbl for lbl in LABELS if word and lbl.startswith(word)]
        if len(matches) == 1:
            per_label.setdefault(matches[0], []).append(float(alt["logprob"]))
    if not per_label:
        return None
    logsumexp = {k: max(v) + math.log(sum(math.exp(x - max(v)) for x in v)) for k, v in per_label.items()}
    probs = softmax(logsumexp)
    return {lbl: probs.get(lbl, 0.0) for lbl in LABELS}

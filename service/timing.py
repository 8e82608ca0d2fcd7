"""Where one request's time went inside the server, as the W3C ``Server-Timing`` response header.

Like text-embeddings-inference's ``x-tokenization-time`` / ``x-queue-time`` / ``x-inference-time``
headers, but in the standard form browsers' dev tools and tracing proxies read, e.g.::

    Server-Timing: parse;dur=0.42, tokenize;dur=0.21, queue;dur=0.03, dispatch;dur=0.08,
                   inference;dur=1.71, deliver;dur=0.06, respond;dur=0.12, total;dur=2.70

Phases, in milliseconds, in the order a request lives them (each from the end of the one before):

* ``parse``: arrival (the first middleware) to the handler: HTTP body, JSON, validation, routing;
* ``admit``: cache lookup, admission's estimate (fully cached answers stop here);
* ``tokenize``: the hop to the tokenizer pool, the tokenisation and the hop back to the event loop;
* ``queue``: queued until the batcher cut the request into a step (the batch window, work ahead);
* ``dispatch``: the hop from the batcher's loop to its inference thread, and runs of other requests
  in the same step before this request's first;
* ``inference``: this request's first run start to its last run end (other requests' runs between
  them included);
* ``deliver``: the last run's end to the handler resuming (the hop back to the event loop);
* ``respond``: building the JSON answer;
* ``total``: arrival to the answer built (the body's ``latency_ms``).

The marks are ``time.monotonic()`` readings, comparable across threads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

PHASES = ("parse", "admit", "tokenize", "queue", "dispatch", "inference", "deliver", "respond")


@dataclass
class Timeline:
    """Monotonic marks of one request: ``received`` and the end of each phase reached so far."""

    received: float
    ends: dict[str, float] = field(default_factory=dict)

    def mark(self, phase: str, at: float | None = None) -> None:
        """``phase`` ended at ``at`` (default: now)."""
        self.ends[phase] = time.monotonic() if at is None else at

    def durations_ms(self, until: float) -> dict[str, float]:
        """Each reached phase's milliseconds (from the previous reached mark), then ``total``."""
        out: dict[str, float] = {}
        previous = self.received
        for phase in PHASES:
            end = self.ends.get(phase)
            if end is None:
                continue
            out[phase] = max(0.0, end - previous) * 1000
            previous = max(previous, end)
        out["total"] = max(0.0, until - self.received) * 1000
        return out

    def header(self, until: float) -> str:
        return ", ".join(f"{name};dur={ms:.3f}" for name, ms in self.durations_ms(until).items())


def parse_server_timing(value: str) -> dict[str, float]:
    """``{phase: ms}`` from a ``Server-Timing`` header value (entries without ``dur`` are skipped)."""
    out: dict[str, float] = {}
    for entry in value.split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        for param in params:
            key, _, number = param.partition("=")
            if key.strip() == "dur" and name:
                out[name] = float(number)
    return out

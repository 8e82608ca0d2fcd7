"""How busy can a server be before its p99 passes a target? The queueing ceiling of a latency SLO.

A request that needs ``S`` of compute and arrives at random (Poisson, as the open-loop bench sends
them) waits for the requests ahead of it. For one server with a *fixed* service time (M/D/1: the
best case, since varying service times only lengthen the tail) the wait of request ``n`` follows
Lindley's recursion ``W[n+1] = max(0, W[n] + S - A[n+1])`` with exponential gaps ``A`` of mean
``S / rho``. Unrolled, ``W[n] = X[n] - min(X[0..n])`` with ``X[n] = sum(S - A[1..n])``, which numpy
computes in one pass. Every time in the system scales with ``S`` at a fixed utilisation ``rho``, so
``p99(S, rho) = S * p99(1, rho)``: one simulated curve answers both "what rate fits this SLO at this
service time?" and "what service time would this rate need?".

The mean wait is checked against Pollaczek-Khinchine, ``E[W] = rho * S / (2 (1 - rho))``, in the tests.

    relevance loadtest queueing --raw-pairs-s 517 --pairs 32 --p99-ms 100
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from loadtest.config import QueueingConfig
from loadtest.report import table

DEFAULT_ARRIVALS = 400_000


@lru_cache(maxsize=None)
def _unit_gaps(n: int, seed: int) -> np.ndarray:
    """Exponential inter-arrival gaps of mean 1; fixed per (n, seed) so curves are monotone in rho."""
    return np.random.default_rng(seed).exponential(1.0, n)


def response_times(utilisation: float, service: float = 1.0, n: int = DEFAULT_ARRIVALS, seed: int = 0) -> np.ndarray:
    """Time in system (wait + service) of ``n`` Poisson arrivals at an M/D/1 server busy ``utilisation`` of the time."""
    if not 0.0 < utilisation < 1.0:
        raise ValueError("utilisation must be in (0, 1): at 1 or more the queue grows without bound")
    gaps = _unit_gaps(n, seed) * (service / utilisation)
    drift = np.concatenate(([0.0], np.cumsum(service - gaps[1:])))
    waits = drift - np.minimum.accumulate(drift)
    return waits + service


def p99_factor(utilisation: float, quantile: float = 99.0, n: int = DEFAULT_ARRIVALS, seed: int = 0) -> float:
    """p99 time in system in units of the service time (1.0 when idle)."""
    return float(np.percentile(response_times(utilisation, 1.0, n, seed), quantile))


def max_utilisation(service_s: float, target_s: float, quantile: float = 99.0, n: int = DEFAULT_ARRIVALS) -> float:
    """The highest utilisation whose p99 time in system stays within ``target_s`` (0 if even an idle server misses)."""
    if service_s >= target_s:
        return 0.0
    low, high = 1e-4, 0.999
    for _ in range(30):
        mid = (low + high) / 2
        if service_s * p99_factor(mid, quantile, n) <= target_s:
            low = mid
        else:
            high = mid
    return low


def run(cfg: QueueingConfig) -> int:
    """Prints the p99 curve of the request's compute, the rate a p99 target allows and the compute a
    utilisation target needs. Returns the exit status."""
    service_ms = cfg.service_ms or 1000.0 * cfg.pairs / cfg.raw_pairs_s
    raw = 1000.0 * cfg.pairs / service_ms
    print(f"M/D/1, Poisson arrivals, {service_ms:.1f} ms of compute per request of {cfg.pairs} pairs "
          f"(raw {raw:.0f} pairs/s)")
    rows = []
    for rho in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.85):
        factor = p99_factor(rho)
        rows.append([f"{rho:.2f}", f"{factor:.2f}", f"{service_ms * factor:.0f}", f"{rho * raw:.0f}"])
    print("\n".join(table(["utilisation", "p99 / service time", "p99 (ms)", "pairs/s"], "rrrr", rows)))
    rho = max_utilisation(service_ms / 1000, cfg.p99_ms / 1000)
    print(f"p99 <= {cfg.p99_ms:.0f} ms holds up to utilisation {rho:.3f}: {rho * raw:.0f} pairs/s ({rho:.2f}x raw)")
    needed = cfg.p99_ms / p99_factor(cfg.utilisation)
    print(f"{cfg.utilisation:.2f}x raw within p99 <= {cfg.p99_ms:.0f} ms needs <= {needed:.1f} ms per request "
          f"(raw >= {1000 * cfg.pairs / needed:.0f} pairs/s, {service_ms / needed:.1f}x faster than this)")
    return 0


if __name__ == "__main__":  # python -m loadtest.queueing: the same as relevance loadtest queueing
    from loadtest import run_as_relevance_command

    run_as_relevance_command("queueing")

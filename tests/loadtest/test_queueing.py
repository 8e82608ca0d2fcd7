"""The M/D/1 simulation behind ``relevance loadtest queueing`` against closed forms."""

from __future__ import annotations

import pytest

from loadtest.queueing import max_utilisation, p99_factor, response_times
from tests.loadtest.commands import relevance_loadtest


def main(argv: list[str]) -> int:
    return relevance_loadtest("queueing", argv)


@pytest.mark.parametrize("rho", [0.3, 0.5, 0.8])
def test_mean_wait_matches_pollaczek_khinchine(rho):
    service = 0.05
    mean_wait = response_times(rho, service, n=200_000).mean() - service
    assert mean_wait == pytest.approx(rho * service / (2 * (1 - rho)), rel=0.05)


def test_an_idle_server_answers_in_its_service_time_and_the_tail_grows_with_load():
    assert p99_factor(0.002) == pytest.approx(1.0)  # under 1% of arrivals find the server busy
    factors = [p99_factor(rho) for rho in (0.1, 0.3, 0.5, 0.7, 0.9)]
    assert factors == sorted(factors) and factors[-1] > 10


def test_max_utilisation_meets_the_target_and_no_more():
    rho = max_utilisation(0.02, 0.1)
    assert 0.0 < rho < 1.0
    assert 0.02 * p99_factor(rho) <= 0.1 < 0.02 * p99_factor(min(rho + 0.02, 0.999))
    assert max_utilisation(0.12, 0.1) == 0.0  # the compute alone misses the target
    with pytest.raises(ValueError):
        response_times(1.0)


def test_cli_prints_the_ceiling(capsys):
    assert main(["--raw-pairs-s", "800", "--pairs", "32", "--p99-ms", "100"]) == 0
    out = capsys.readouterr().out
    assert "40.0 ms of compute per request" in out and "p99 <= 100 ms holds up to utilisation" in out


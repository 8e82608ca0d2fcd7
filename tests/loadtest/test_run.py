"""The kit's command: a few-second step run against the tiny bundle writes the report and the plot;
bad input is refused with a hint; the Locust file runs the same scenario (when Locust is installed)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from loadtest.servers import free_port, parse_url, running_server, service_command, settings_env
from tests.loadtest.commands import relevance_loadtest


def main(argv: list[str]) -> int:
    return relevance_loadtest("run", argv)

# Tiny and bounded: 2 steps of 0.8 s measured; a generous deadline and target, because this box's
# cores are shared (the test checks the kit, not the service's speed).
SMOKE = {
    "name": "smoke",
    "queries": {"split": "test", "pool": 6, "zipf_exponent": 1.5},
    "services": {2: 1, 4: 1},
    "buckets": {"a": 1, "": 1},
    "shadow_share": 0.3,
    "deadline_ms": 5000,
    "step": {
        "start_pairs_s": 30,
        "step_pairs_s": 30,
        "max_steps": 2,
        "refine": 1,
        "duration_s": 0.8,
        "warmup_s": 0.2,
        "pause_s": 0,
        "timeout_s": 5,
        "p99_target_ms": 5000,
        "max_total_s": 30,
    },
}


@pytest.fixture
def smoke_scenario(tmp_path) -> Path:
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(SMOKE))
    return path


def test_step_run_writes_report_and_plot(tiny_bundle, catalog_jsonl, smoke_scenario, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--scenario", str(smoke_scenario), "--bundle", str(tiny_bundle), "--data", str(catalog_jsonl)]
    assert main([*args, "--p99-target-ms", "4000", "--out-dir", str(out)]) == 0

    report = json.loads((out / "report.json").read_text())
    # the command that reproduces the report
    assert report["command"] == (f"relevance loadtest run --data {catalog_jsonl} --bundle {tiny_bundle} "
                                 f"--scenario {smoke_scenario} --p99-target-ms 4000.0 --out-dir {out}")
    assert report["p99_target_ms"] == 4000 and report["target"]["started_here"]
    assert report["traffic"]["queries_in_pool"] == 6
    steps = report["steps"]
    assert [s["offered_pairs_s"] for s in steps] == [30, 60]
    for step in steps:
        p = step["primary"]
        assert p["requests"] > 0 and p["ok"] + p["errors"] + p["sheds"] == p["requests"]
        assert p["pairs_s"] > 0 and 0 < p["p50_ms"] <= p["p95_ms"] <= p["p99_ms"]
        assert {"offered_rps", "achieved_rps", "wall_s", "generator_cpu_pct", "server_cpu_pct"} <= set(step)
        assert set(step["buckets"]) <= {"a", ""} and sum(step["buckets"].values()) == p["requests"]
        assert set(p["variants"]) <= {"control"}
    mirrored = sum(s["shadow"]["requests"] for s in steps)
    sent = sum(s["primary"]["requests"] for s in steps)
    assert 0 < mirrored < sent  # about 30% mirrored
    assert any(s["shadow"]["variants"].get("shadow") for s in steps)
    # six queries with Zipf 1.5: repeats, and the service's cache answers them
    assert max(s["primary"]["cache_hit_share"] or 0 for s in steps) > 0
    assert report["result"]["max_pairs_s"] > 0 and "max_steps (2)" in report["result"]["stopped"]
    assert report["generator"]["cpu_pct_of_one_core_max"] is not None

    assert (out / "latency-throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["plot"] == "latency-throughput.png"
    assert "| step | 30 |" in (out / "report.md").read_text()
    printed = capsys.readouterr().out
    assert "max throughput with p99 <= 4000 ms" in printed and printed.count("offered") == 2


def test_check_sends_nothing_and_schema_prints(catalog_jsonl, smoke_scenario, capsys):
    assert main(["--scenario", str(smoke_scenario), "--data", str(catalog_jsonl), "--check"]) == 0
    assert "step plan: 30 pairs/s + 30 per step" in capsys.readouterr().out
    assert main(["--print-schema"]) == 0
    assert "zipf_exponent" in json.loads(capsys.readouterr().out)["$defs"]["QueryPool"]["properties"]


def test_bad_input_is_refused_with_a_hint(tmp_path, smoke_scenario, catalog_jsonl, capsys):
    assert main(["--scenario", str(tmp_path / "none.yaml")]) == 2
    assert "no such scenario file" in capsys.readouterr().err
    assert main(["--scenario", str(smoke_scenario), "--data", str(tmp_path / "nothing")]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["--scenario", str(smoke_scenario), "--url", "http://10.0.0.1:8000"]) == 2
    assert "loopback" in capsys.readouterr().err
    assert main(["--scenario", str(smoke_scenario), "--bundle", str(tmp_path)]) == 2
    assert "no bundle" in capsys.readouterr().err
    port = free_port()  # nothing listens there
    args = [
        "--scenario",
        str(smoke_scenario),
        "--data",
        str(catalog_jsonl),
        "--url",
        f"http://127.0.0.1:{port}",
    ]
    assert main([*args, "--out-dir", str(tmp_path / "o")]) == 1
    assert "readyz is not ready" in capsys.readouterr().err
    running = ["--scenario", str(smoke_scenario), "--url", "http://127.0.0.1:1"]
    assert main([*running, "--set", "cache_enabled=false"]) == 2  # a usage error
    assert "--set configures a service started here" in capsys.readouterr().err
    assert main([*running, "--bundle", str(tmp_path)]) == 2
    assert main(["--p99-target-ms", "100"]) == 2
    assert "--scenario is required" in capsys.readouterr().err


def test_url_parsing():
    target = parse_url("http://localhost:8080/api/")
    assert (target.host, target.port, target.prefix) == ("localhost", 8080, "/api")
    with pytest.raises(ValueError, match="plain HTTP"):
        parse_url("https://127.0.0.1:8443")


LOCUST = shutil.which("locust", path=str(Path(sys.executable).parent)) or shutil.which("locust")


@pytest.mark.skipif(
    importlib.util.find_spec("locust") is None or LOCUST is None,
    reason="Locust is not a project dependency: `pip install locust` to check loadtest/locustfile.py",
)
def test_locustfile_runs_the_scenario(tiny_bundle, catalog_jsonl, smoke_scenario, tmp_path):
    port = free_port()
    env = settings_env({"log_level": "warning"})
    with running_server(service_command(tiny_bundle, port), port, env, tmp_path / "service.log"):
        done = subprocess.run(
            [
                LOCUST,
                "-f",
                "loadtest/locustfile.py",
                "--headless",
                "-u",
                "2",
                "-r",
                "2",
                "-t",
                "3s",
                "--host",
                f"http://127.0.0.1:{port}",
                "--only-summary",
            ],
            env={
                **os.environ,
                "LOADTEST_SCENARIO": str(smoke_scenario),
                "LOADTEST_DATA": str(catalog_jsonl),
                "LOADTEST_USER_RPS": "4",
            },
            check=False,
            cwd=Path(__file__).parents[2],
            capture_output=True,
            text=True,
            timeout=60,
        )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "/relevance [bucket=" in output and "cache hit share" in output
    assert " 0(0.00%)" in output  # no failures: every request answered 200

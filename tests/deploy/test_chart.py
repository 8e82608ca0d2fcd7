"""The Helm chart renders with Helm's own engine and every object validates against the schemas.

Core objects against the Kubernetes JSON schemas (kubernetes-validate, strict: unknown fields are
errors) at the chart's oldest supported release and a current one; ServiceMonitor and PrometheusRule
against the prometheus-operator CRD schemas (node). The rendered settings file is loaded by the
service's own Settings class, which forbids unknown keys, so chart and service cannot drift apart.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from tests.deploy.support import (
    AB_SHADOW_VALUES,
    CHART,
    DASHBOARD_FILE,
    KUBE_VERSIONS,
    NODE_TOOLS,
    RULES_FILE,
    by_kind,
    load_values_file,
    manifests,
    missing_tool,
    render_chart,
)

CORE_KINDS = {"ServiceAccount", "ConfigMap", "Service", "Deployment", "HorizontalPodAutoscaler",
              "PodDisruptionBudget"}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
VALUE_SETS = {"default": {}, "ab-shadow": None}


def _values(name: str) -> dict:
    return load_values_file(AB_SHADOW_VALUES) if name == "ab-shadow" else {}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request) -> tuple[str, dict, list[dict]]:
    values = _values(request.param)
    return request.param, values, manifests(render_chart(values))


def kube_validate(doc: dict, version: str) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        missing_tool("kubernetes-validate")
    kubernetes_validate.validate(doc, version, strict=True)


def crd_validate(docs: list[dict]) -> list[dict]:
    script = CHART.parent / "tests" / "deploy" / "validate_crds.mjs"
    if not (NODE_TOOLS / "node_modules" / "@kubernetes-models" / "prometheus-operator").is_dir():
        missing_tool("@kubernetes-models/prometheus-operator (npm, in .cache/deploy-tools)")
    proc = subprocess.run(["node", str(script), str(NODE_TOOLS)], input=json.dumps(docs), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_renders_every_object(rendered):
    name, _, docs = rendered
    kinds = by_kind(docs)
    assert set(kinds) == CORE_KINDS | CRD_KINDS, name
    assert len(kinds["ConfigMap"]) == 2  # settings + dashboard


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_core_objects_validate_against_kubernetes_schemas(rendered, kube_version):
    _, _, docs = rendered
    core = [d for d in docs if d["kind"] in CORE_KINDS]
    for doc in core:
        try:
            kube_validate(doc, kube_version)
        except Exception as exc:  # noqa: BLE001 - report which object failed and why
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} is invalid for Kubernetes {kube_version}: "
                        f"{getattr(exc, 'message', exc)} at {list(getattr(exc, 'path', []))}")


def test_monitoring_objects_validate_against_crd_schemas(rendered):
    _, _, docs = rendered
    results = crd_validate([d for d in docs if d["kind"] in CRD_KINDS])
    assert len(results) == 2
    assert [r for r in results if r["error"]] == []


def test_crd_validator_rejects_a_broken_service_monitor():
    """The CRD check is real: a port given as a number and a malformed interval are caught."""
    docs = by_kind(manifests(render_chart()))
    broken = json.loads(json.dumps(docs["ServiceMonitor"][0]))
    broken["spec"]["endpoints"][0].update(port=8000, interval="15 seconds")
    [result] = crd_validate([broken])
    assert result["error"] and "interval" in result["error"]


def test_kubernetes_validator_rejects_an_unknown_field():
    docs = by_kind(manifests(render_chart()))
    deployment = json.loads(json.dumps(docs["Deployment"][0]))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(Exception, match="httpGett"):
        kube_validate(deployment, KUBE_VERSIONS[-1])


def test_helm_lint_is_clean():
    try:
        import helm_python as helm
    except ImportError:
        missing_tool("helm-python-sdk")
    for values in ({}, load_values_file(AB_SHADOW_VALUES)):
        report = helm.lint(str(CHART), values, strict=True)
        assert report["errors"] == [], report
        assert [m for m in report["messages"] if m["severity"] > 1] == [], report


def test_deployment_probes_drain_and_spread(rendered):
    name, values, docs = rendered
    deployment = by_kind(docs)["Deployment"][0]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    # preStop sleep, then SIGTERM and the service's drain: the grace period covers both.
    sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    drain = values.get("drain", {}).get("timeoutSeconds", 20)
    assert pod["terminationGracePeriodSeconds"] >= sleep + drain
    settings = json.loads(by_name(docs, "ConfigMap", "-settings")["data"]["settings.json"])
    assert settings["drain_timeout_s"] == drain
    assert container["ports"][0]["containerPort"] == settings["port"]
    # Spread over zones and nodes, selecting exactly this release's pods.
    selector = deployment["spec"]["selector"]["matchLabels"]
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert all(c["labelSelector"]["matchLabels"] == selector for c in pod["topologySpreadConstraints"])
    # Non-root, matching the image's USER 10001.
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # The settings ConfigMap is what the service reads.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RELEVANCE_CONFIG_FILE"] == "/etc/relevance/settings.json"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "settings")
    assert mount["mountPath"] == "/etc/relevance"
    assert "checksum/settings" in deployment["spec"]["template"]["metadata"]["annotations"]


def by_name(docs: list[dict], kind: str, suffix: str) -> dict:
    return next(d for d in by_kind(docs)[kind] if d["metadata"]["name"].endswith(suffix))


def test_services_selectors_and_monitoring_match(rendered):
    _, _, docs = rendered
    kinds = by_kind(docs)
    selector = kinds["Deployment"][0]["spec"]["selector"]["matchLabels"]
    pod_labels = kinds["Deployment"][0]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    service = kinds["Service"][0]
    assert service["spec"]["selector"] == selector
    assert kinds["PodDisruptionBudget"][0]["spec"]["selector"]["matchLabels"] == selector
    monitor = kinds["ServiceMonitor"][0]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["endpoints"][0]["path"] == "/metrics"
    hpa = kinds["HorizontalPodAutoscaler"][0]["spec"]
    assert hpa["scaleTargetRef"]["name"] == kinds["Deployment"][0]["metadata"]["name"]


def test_prometheus_rule_and_dashboard_ship_the_plain_files_verbatim(rendered):
    _, _, docs = rendered
    rule = by_kind(docs)["PrometheusRule"][0]
    assert rule["spec"] == yaml.safe_load(RULES_FILE.read_text())
    dashboard = by_name(docs, "ConfigMap", "-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["relevance.json"]) == json.loads(DASHBOARD_FILE.read_text())


def test_ab_shadow_values_reach_the_settings_file():
    docs = manifests(render_chart(load_values_file(AB_SHADOW_VALUES)))
    settings = json.loads(by_name(docs, "ConfigMap", "-settings")["data"]["settings.json"])
    assert settings["variants"] == {"candidate": "/models/candidate-2024-06"}
    assert settings["ab_buckets"] == {"a": "control", "b": "candidate"}
    assert settings["shadow_bundle"] == "/models/shadow-2024-07"
    assert settings["shadow_sample_rate"] == 0.05
    kinds = by_kind(docs)
    metrics = {m["type"] for m in kinds["HorizontalPodAutoscaler"][0]["spec"]["metrics"]}
    assert metrics == {"Resource", "Pods", "External"}
    assert kinds["PodDisruptionBudget"][0]["spec"] == {
        "maxUnavailable": 1, "selector": kinds["PodDisruptionBudget"][0]["spec"]["selector"]}
    mounts = kinds["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "bundles", "mountPath": "/models", "readOnly": True} in mounts


@pytest.mark.parametrize("values_name", sorted(VALUE_SETS))
def test_settings_file_is_accepted_by_the_service(values_name, tmp_path, monkeypatch):
    """The service's Settings (extra="forbid") loads the chart's settings file as the pod would."""
    settings_mod = pytest.importorskip("service.settings", reason="service/settings.py is not there yet")
    docs = manifests(render_chart(_values(values_name)))
    path = tmp_path / "settings.json"
    path.write_text(by_name(docs, "ConfigMap", "-settings")["data"]["settings.json"])
    for key in [k for k in __import__("os").environ if k.startswith("RELEVANCE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RELEVANCE_CONFIG_FILE", str(path))
    settings = settings_mod.Settings()
    assert str(settings.bundle) == "/opt/relevance/models/default"
    assert settings.host == "0.0.0.0" and settings.port == 8000
    values = _values(values_name)
    assert settings.shadow_sample_rate == values.get("shadow", {}).get("sampleRate", 0.0)
    assert {k: str(v) for k, v in settings.variants.items()} == values.get("variants", {})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"abBuckets": {"b": "nope"}}, "abBuckets.b points to variant \"nope\""),
        ({"variants": {"control": "/models/x"}}, "reserved names"),
        ({"shadow": {"sampleRate": 1.5}}, "sampleRate must be within"),
    ],
)
def test_render_refuses_settings_the_service_would_refuse(values, message):
    with pytest.raises(Exception, match=re.escape(message)):
        render_chart(values)


def test_optional_objects_can_be_turned_off():
    docs = manifests(render_chart({
        "autoscaling": {"enabled": False}, "podDisruptionBudget": {"enabled": False},
        "serviceMonitor": {"enabled": False}, "prometheusRule": {"enabled": False},
        "grafanaDashboard": {"enabled": False}, "serviceAccount": {"create": False},
    }))
    kinds = by_kind(docs)
    assert set(kinds) == {"ConfigMap", "Service", "Deployment"}
    assert kinds["Deployment"][0]["spec"]["replicas"] == 2


def _leaf_keys(values: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value and key not in {"resources", "podSecurityContext", "securityContext",
                                                             "behavior", "settings"}:
            keys.extend(_leaf_keys(value, path))
        else:
            keys.append(path)
    return keys


def test_every_value_is_documented_in_the_readme():
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    missing = [k for k in _leaf_keys(yaml.safe_load((CHART / "values.yaml").read_text())) if k not in documented]
    assert missing == [], f"helm/README.md's values table lacks: {missing}"

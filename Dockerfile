# syntax=docker/dockerfile:1
#
# Serving image of the relevance service: `relevance serve` on ONNX Runtime, no torch, no compiler.
#
#   docker build -t relevance-service:0.1.0 .                                  # CPU (onnxruntime, openvino)
#   docker build --build-arg RUNTIME=gpu -t relevance-service:0.1.0-gpu .      # GPU (onnxruntime-gpu, CUDA 12 + cuDNN 9)
#   docker run --rm -p 8000:8000 relevance-service:0.1.0
#   docker run --rm -p 8000:8000 -v /path/to/bundle:/models/mine:ro -e RELEVANCE_BUNDLE=/models/mine relevance-service:0.1.0
#
# Settings are the service's RELEVANCE_* environment variables or a settings file named by
# RELEVANCE_CONFIG_FILE (the Helm chart mounts one). The image sets none of them: its working
# directory holds the default bundle at models/default, which is the service's default `bundle`,
# and the defaults bind 0.0.0.0:8000. tests/deploy/test_dockerfile.py runs this exact entrypoint,
# working directory and healthcheck outside Docker.

# cpu | gpu
ARG RUNTIME=cpu
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04

# ---------------------------------------------------------------------------------------------
# Interpreters. CPU: the official slim Python. GPU: CUDA runtime + cuDNN with Ubuntu's Python 3.11.
# The builder and the final image of one RUNTIME start from the same interpreter stage, so the
# virtual environment copied between them points at an interpreter that exists.
FROM ${PYTHON_IMAGE} AS python-cpu

FROM ${CUDA_IMAGE} AS python-gpu
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && ln -sf /usr/bin/python3.11 /usr/local/bin/python3 \
    && ln -sf /usr/bin/python3.11 /usr/local/bin/python

# ---------------------------------------------------------------------------------------------
# Builder: a virtual environment with the project and its serving dependencies, from wheels only
# (no compiler needed, none shipped). GPU swaps onnxruntime for onnxruntime-gpu: the two wheels
# own the same `onnxruntime` module, so one is removed before the other goes in.
# hadolint ignore=DL3006
FROM python-${RUNTIME} AS builder
ARG RUNTIME
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ONLY_BINARY=:all:
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what the serving install needs: no training/, export/, tests, data or runs.
COPY pyproject.toml README.md ./
COPY relevance ./relevance
COPY service ./service
# The CPU image also gets OpenVINO, which serves models/fast-openvino (INT8 on AMX on Intel Xeons).
# hadolint ignore=DL3013
RUN pip install --upgrade pip \
    && if [ "$RUNTIME" = "cpu" ]; then EXTRAS="[openvino]"; else EXTRAS=""; fi \
    && pip install --no-binary=relevance-service ".${EXTRAS}" \
    && if [ "$RUNTIME" = "gpu" ]; then \
         ORT_VERSION="$(pip show onnxruntime | sed -n 's/^Version: //p')" \
         && pip uninstall -y onnxruntime \
         && pip install "onnxruntime-gpu==${ORT_VERSION}"; \
       fi \
    && python -c "import service, onnxruntime; print('providers:', onnxruntime.get_available_providers())" \
    && python -c "import sys, importlib.util; sys.exit(importlib.util.find_spec('torch') is not None)"

# ---------------------------------------------------------------------------------------------
# Final image: interpreter + virtual environment + default bundle; non-root; read-only friendly.
# hadolint ignore=DL3006
FROM python-${RUNTIME} AS final
ARG RUNTIME
LABEL org.opencontainers.image.title="relevance-service" \
      org.opencontainers.image.description="Latency-budgeted relevance scoring (POST /relevance) on ONNX Runtime (${RUNTIME})" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 relevance \
    && useradd --system --uid 10001 --gid relevance --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin relevance
COPY --from=builder /opt/venv /opt/venv
# The default (accurate) bundle and the fast ones, baked in: RELEVANCE_BUNDLE=models/fast serves the
# fast one (models/fast-openvino: the same student on OpenVINO, CPU image only), or RELEVANCE_VARIANTS
# puts one in an A/B bucket. Any other bundle: mount it and set RELEVANCE_BUNDLE (or the settings
# file's `bundle`, `variants`, `shadow_bundle`) to its path.
WORKDIR /opt/relevance
COPY --chown=root:root models/default ./models/default
COPY --chown=root:root models/fast ./models/fast
COPY --chown=root:root models/fast-openvino ./models/fast-openvino
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# Liveness of the process on the port it serves (RELEVANCE_PORT, default 8000); Python, as the
# slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RELEVANCE_PORT', '8000'), timeout=2)"]
# SIGTERM goes straight to uvicorn (exec form, PID 1), which stops accepting and drains in-flight
# requests for up to drain_timeout_s.
ENTRYPOINT ["relevance", "serve"]
CMD []

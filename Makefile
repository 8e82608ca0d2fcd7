# The two commands of the README:
#   make serve   set up a venv, install the serving extra, serve models/default on :8000
#   make test    set up a venv with training + dev extras and run the test suite
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 0.0.0.0
PORT ?= 8000
BUNDLE ?= models/default

.PHONY: serve test venv install-serve install-dev deploy-tools bench clean

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

install-serve: $(PY)
	$(PIP) install -q -e .

# torch is pinned in the [train] extra (CPU build from local disk; an unpinned torch pulls CUDA);
# [engines] is OpenVINO + NNCF for `relevance lab engines` (tests run it on the tiny bundle).
install-dev: $(PY)
	$(PIP) install -q -e '.[train,engines,dev]'

# promtool + prometheus (Debian), Helm's engine, Kubernetes schemas, hadolint: tests/deploy needs them.
deploy-tools: $(PY)
	VENV=$(VENV) bash .ci/install-deploy-tools.sh

serve: install-serve
	$(VENV)/bin/relevance serve --bundle $(BUNDLE) --host $(HOST) --port $(PORT)

test: install-dev deploy-tools
	$(PY) -m pytest -q

# Benchmarks print numbers and write docs/ tables; run them on a quiet machine (nothing else running).
bench: install-dev
	$(VENV)/bin/relevance lab runtimes runs/bundle-full --checkpoint runs/student/best
	$(VENV)/bin/relevance loadtest bench --bundle $(BUNDLE)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# Two commands: `make run` (venv, database, demo history, app) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
DEMO_ROWS ?= 200000

.PHONY: run test lint format init demo bench clean

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

init: $(VENV)/.runtime
	$(PY) -m core init

# The app runs dedicated endpoints on the offline stand-in unless you point this at Hugging Face (see README).
demo run: export HF_ENDPOINTS_API_URL ?= local

demo: init
	$(PY) -m core demo --rows $(DEMO_ROWS) --if-empty $(if $(filter local,$(HF_ENDPOINTS_API_URL)),--with-endpoints)
	-$(PY) -m core spend sync  # so the Spend page opens without a first sync (a failure here does not stop the app)

run: demo
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(VENV)/.dev
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(VENV)/.dev
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) data/app.db data/app.db-* data/analytics.duckdb* tests/e2e/artifacts

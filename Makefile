# Two commands: `make run` (venv, database, demo history, app and gateway) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# Local mode lets whoever opens the app act as anyone, so the app and the gateway listen on this machine only;
# HOST=0.0.0.0 make run opens them to the network (configure [auth] first, see README).
HOST ?= 127.0.0.1
GATEWAY_PORT ?= 8000
DEMO_ROWS ?= 200000
# The suite runs on this many processes (pytest-xdist): two halves its time on two cores. Every test keeps to its own
# database, PostgreSQL schema, ports and files, so they may run side by side; a file's tests stay together, in order,
# in one process (--dist loadfile), so a module's shared fixture is built once. TEST_WORKERS=0 runs it in this process.
# The real-browser tests (tests/e2e) run after, alone: beside the CPU-heavy tests a page's rerun could be slow enough
# to leave the old page's elements on screen when the test read them.
TEST_WORKERS ?= 2

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

# The app and the HTTP gateway side by side (serve_all.py): both ports are checked before the fresh demo key is made, so
# a second `make run` on busy ports fails without revoking the running one's key; when either server stops (or on
# Ctrl-C) the other is stopped too, and a stop asked for is not a make error (serve_all.py holds the terminal while the
# servers run, so Ctrl-C reaches them and not make, which exits 0 with no "Interrupt" line). serve_app.py is `streamlit run app.py`
# with the engine built before the first visitor (so the first page is not slow).
run: demo
	@$(PY) serve_all.py --host $(HOST) --port $(PORT) --gateway-port $(GATEWAY_PORT)

test: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --ignore=tests/e2e
	$(PY) -m pytest tests/e2e

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

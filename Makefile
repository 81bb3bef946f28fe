# FinCRM: `make run` starts the app on SQLite with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app run

.PHONY: run test services install lint lint-deploy format clean worker bench bench-scale

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(FLASK) crm init
	$(FLASK) crm seed-demo
	@echo "FinCRM on http://127.0.0.1:8080  (log in as admin / FinCRM-demo-2026; other logins above)"
	$(BIN)/python run.py

services:
	./scripts/ensure-services.sh

test: $(STAMP) services lint-deploy
	$(BIN)/pytest

# Not part of `make test`: fills the PostgreSQL database fincrm_bench (skipped when already filled
# by the same generator), then measures screens, API, dashboards, jobs, a PDF and the 100,000-lead
# import (scripts/bench_import.py, its own throw-away database). Figures: bench-results/*.json.
# The load comes from wrk, installed with apt when missing (scripts/ensure-wrk.sh).
bench: $(STAMP) services
	./scripts/ensure-wrk.sh
	$(BIN)/python scripts/bench_data.py
	$(BIN)/python scripts/bench_run.py

# Scale-out figures on the filled fincrm_bench: gunicorn 1/2/4 processes under 10/40/80
# connections, and 2,000 e-mails delivered by 1 and 2 workers (docs/scaling.md).
bench-scale: $(STAMP) services
	./scripts/ensure-wrk.sh
	$(BIN)/python scripts/bench_data.py
	$(BIN)/python scripts/bench_scale.py

worker: $(STAMP)
	$(BIN)/python worker.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The Dockerfile (hadolint) and docker-compose.yml (the compose specification's schema).
lint-deploy: $(STAMP)
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) instance .pytest_cache

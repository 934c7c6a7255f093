# Everyday commands. `make run` and `make test` are the two that matter.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# The app code semgrep checks with .semgrep/bazaar.yml (never the registry's rules).
SEMGREP_TARGETS ?= accounts backoffice project shop templates webhooks

.DEFAULT_GOAL := help
.PHONY: help install run migrate seed dispatcher test lint format bench bench-profile bench-backup chaos clean

help:
	@echo "make run    - install, migrate, load demo data and serve the shop at http://$(HOST):$(PORT)/"
	@echo "make test   - the whole suite on PostgreSQL and Redis (unit, integration, browser), with coverage"
	@echo "make bench  - task throughput, payment latency, websocket latency and fan-out, page req/s, checkout under load, 1M-product catalogue"
	@echo "make bench-profile - where each page's milliseconds go (SQL, templates, middleware, sessions, logging)"
	@echo "make bench-backup - backup and restore times: demo data and 100,000 orders (minutes)"
	@echo "make chaos  - fault-injection run, a few minutes (CHAOS_SECONDS=, CHAOS_ARGS=); not in make test"
	@echo "make lint   - ruff, the migration check, semgrep with the local rules (.semgrep/), mypy, and the deployment checks"
	@echo "make clean  - remove the virtualenv and the embedded database"

$(VENV)/.installed: pyproject.toml
	@scripts/make-venv.sh "$(VENV)"
	@touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --no-input

seed: migrate
	$(PY) manage.py seed_demo

run: seed
	@scripts/run.sh "$(HOST)" "$(PORT)"

# The event dispatcher as its own process (production shape; `make run` dispatches in-process).
dispatcher: migrate
	$(PY) manage.py run_dispatcher

# The suite runs under coverage of the app packages, the processes it starts included
# ([tool.coverage] in pyproject.toml); the whole suite fails below the floor set there
# (fail_under). A run of some tests (PYTEST_ARGS=...) only reports its figure.
# PYTEST_WORKERS pytest-xdist workers share the tests file by file (the suite mostly waits on
# the processes and browsers it starts); each has its own test database and Redis database
# (tests/settings.py), so REDIS_URL's number up to number + PYTEST_WORKERS - 1 are used.
PYTEST_WORKERS ?= 3
# Two runs: the browser tests apart (`-m browser`), since Playwright leaves an event loop
# running in each worker it was used in (tests/conftest.py). Exit code 5 is "nothing selected".
PYTEST_RUN = scripts/with-test-services.sh $(VENV)/bin/coverage run -m pytest \
	-n $(PYTEST_WORKERS) --dist loadfile
test: install
	@$(VENV)/bin/coverage erase
	@$(PYTEST_RUN) --durations=25 -m "not browser" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	@$(PYTEST_RUN) --durations=10 -m browser $(PYTEST_ARGS) || [ $$? -eq 5 ]
	@$(VENV)/bin/coverage combine --quiet
	@mkdir -p var
	@$(VENV)/bin/coverage report $(if $(PYTEST_ARGS),--fail-under=0) > var/coverage.txt \
		|| { cat var/coverage.txt; echo "Coverage of the app packages is below the floor." >&2; exit 1; }
	@echo "Coverage of the app packages: $$($(VENV)/bin/coverage report --format=total --fail-under=0)% (per file: var/coverage.txt)"

# Speed targets live here, never in tests: tasks/s per queue, payment latency p50/p99,
# commit-to-websocket latency p50/p99 and fan-out to 1,000 websocket clients, and the pages'
# req/s, p50/p99 and ratio to Django's own reference views (PAGES_ARGS=, e.g. --shapes ...;
# docs/performance.md). `make bench-profile`: where each page's milliseconds go.
# Checkout under load: per-step p50/p99 of 16 shoppers, orders/s, 64 buyers of the last 10 units
# (docs/checkout.md). The catalogue on 1,000,000 products (docs/search.md).
bench: install
	@scripts/with-test-services.sh $(PY) bench/tasks_bench.py $(BENCH_ARGS)
	@scripts/with-test-services.sh $(PY) bench/events_bench.py
	@scripts/with-test-services.sh $(PY) bench/pages_bench.py $(PAGES_ARGS)
	@scripts/with-test-services.sh $(PY) bench/catalogue_bench.py
	@scripts/with-test-services.sh $(PY) bench/checkout_bench.py
	@scripts/with-test-services.sh $(PY) bench/api_checkout_bench.py

bench-profile: install
	@scripts/with-test-services.sh $(PY) bench/pages_profile.py $(PROFILE_ARGS)

# Backup and restore times on a scratch database: the demo data, then 100,000 bulk-created orders.
bench-backup: install
	@scripts/with-test-services.sh $(PY) bench/backup_bench.py $(BENCH_ARGS)

# Fault injection on private PostgreSQL and Redis: shoppers over HTTP while processes are
# SIGKILLed and services crash, then the invariants (docs/chaos.md). Exits non-zero on a violation.
chaos: install
	$(PY) -m chaos $(CHAOS_ARGS)

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(PY) manage.py lint_migrations
	$(VENV)/bin/semgrep scan --config .semgrep/bazaar.yml --metrics=off --disable-version-check \
		--error --quiet $(SEMGREP_TARGETS)
	@scripts/semgrep-rules-test.sh "$(VENV)"
	$(VENV)/bin/mypy
	@# Dockerfile (hadolint), deploy/k8s/ rendered and validated, check --deploy, migrations.
	$(PY) scripts/check_deploy.py

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var staticfiles .mypy_cache .coverage .coverage.*

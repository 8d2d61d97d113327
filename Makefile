# `make run` and `make test` work on a fresh machine: they create .venv and install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | sha1sum | cut -c1-12)

.PHONY: install run test test-pg chromium check bench

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Debian's Chromium for the Playwright browser tests (Playwright cannot download its own here).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --if-empty
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	exec bin/serve

test: install chromium
	$(BIN)/python manage.py makemigrations --check --dry-run --verbosity 0
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The same suite on the machine's PostgreSQL + Redis (what .ci/run runs first).
test-pg:
	DATABASE_URL=$${DATABASE_URL:-postgres://root@127.0.0.1:5432/test} REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} $(MAKE) test

check: install
	DEBUG=false SECRET_KEY=$$(openssl rand -hex 32) ALLOWED_HOSTS=crm.example.ru $(BIN)/python manage.py check --deploy --fail-level WARNING

# Benchmarks, not part of `make test` (bench/README.md): PostgreSQL and Redis on this machine.
# The scripts create the bench database if it is missing and migrate it; each prints its figures
# against a raw baseline measured in the same run.
BENCH_DATABASE_URL ?= postgres://root@127.0.0.1:5432/bench
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/1
BENCH_ENV := DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL)

bench: install
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BENCH_ENV) $(BIN)/python bench/common.py
	$(BENCH_ENV) $(BIN)/python bench/send_message.py
	$(BENCH_ENV) $(BIN)/python bench/inbox.py
	$(BENCH_ENV) $(BIN)/python bench/ws_load.py
	$(BENCH_ENV) $(BIN)/python bench/booking.py
	$(BENCH_ENV) $(BIN)/python bench/notifications.py

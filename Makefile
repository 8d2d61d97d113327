# `make run` and `make test` work on a fresh machine: they create .venv and install what they need from
# the lock, hashes checked: `make run` the runtime (requirements/runtime.txt), `make test` the runtime and the
# dev tools (requirements/dev.txt, the same resolution). A changed lock reinstalls (the stamp names its hash).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
stamp = $(VENV)/.installed-$(1)-$(shell sha1sum requirements/$(1).txt | cut -c1-12)
define install_lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements/$(1).txt
	@rm -f $(VENV)/.installed-$(1)-* && touch $@
endef

# `make test` checks formatting (`ruff format --check .`) and types (mypy, pyproject.toml [tool.mypy]);
# RUFF_FORMAT=0 / MYPY=0 skip them while iterating.
RUFF_FORMAT ?= 1
MYPY ?= 1

# What `make run` needs to start for a developer; the product's settings default to production
# (DEBUG off, no key, no hosts). Values given in the environment win.
run: export DEBUG ?= true
run: export SECRET_KEY ?= dev-only-insecure-key-never-use-in-production-0123456789abcdefghijkl
run: export ALLOWED_HOSTS ?= 127.0.0.1,localhost

.PHONY: install install-dev run test test-pg chromium check bench lock

$(call stamp,runtime): requirements/runtime.txt
	$(call install_lock,runtime)

$(call stamp,dev): requirements/dev.txt
	$(call install_lock,dev)

install: $(call stamp,runtime)
install-dev: $(call stamp,dev)

# Re-lock after changing pyproject.toml's dependencies (uv in a venv of its own; the lock keeps today's
# versions unless a range excludes them: `make lock UPGRADE=--upgrade` to move everything forward).
UV_VERSION := 0.13.9
UV := .venv-lock/bin/uv
UV_COMPILE = $(UV) pip compile pyproject.toml --python-version 3.11 --generate-hashes --custom-compile-command "make lock" --quiet $(UPGRADE)
lock:
	@test -x $(UV) || { $(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet uv==$(UV_VERSION); }
	$(UV_COMPILE) -o requirements/runtime.txt
	$(UV_COMPILE) --group dev -c requirements/runtime.txt -o requirements/dev.txt

# Debian's Chromium for the Playwright browser tests (Playwright cannot download its own here).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --if-empty
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	exec bin/serve

test: install-dev chromium
	DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python manage.py makemigrations --check --dry-run --verbosity 0
	$(BIN)/ruff check .
	$(if $(filter 1,$(RUFF_FORMAT)),$(BIN)/ruff format --check .)
	$(if $(filter 1,$(MYPY)),$(BIN)/mypy)
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

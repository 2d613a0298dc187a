# Set-up and day-to-day commands. `make run` and `make test` work on a fresh
# machine: they install pipenv and the locked packages first.

PYTHON ?= python3
PIPENV := $(PYTHON) -m pipenv
ADDR ?= 127.0.0.1:8000
# Where `make test` finds PostgreSQL for its second pass.
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test

# The virtualenv lives in .venv; settings.py reads .env itself, so pipenv
# must not export it into the tests' environment.
export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_DONT_LOAD_ENV := 1
export PIPENV_VERBOSITY := -1

.PHONY: install test-packages run doctor test lint fmt bench

.venv/.installed: Pipfile.lock
	$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet pipenv
	$(PIPENV) sync --dev
	touch $@

install: .venv/.installed

# Debian packages the tests skip without: Chromium for the browser tests
# (Playwright cannot download its own here), with fonts so that screenshots
# show Chinese and emoji; nginx and openssl for the deployment tests, which
# start nginx themselves on 127.0.0.1; valgrind for counting the instructions
# of each sign-in request (tests/bench_requests.py). policy-rc.d keeps Debian
# from starting the nginx service on port 80 while installing it.
TEST_PACKAGES := chromium fonts-wqy-microhei fonts-noto-color-emoji nginx openssl valgrind
test-packages:
	@missing=$$(for package in $(TEST_PACKAGES); do dpkg -s $$package >/dev/null 2>&1 || echo $$package; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	    echo "Not root: the tests that need them skip. Install them with: sudo apt-get install" $$missing; exit 0; \
	fi; \
	echo "Installing" $$missing; \
	if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    trap 'rm -f /usr/sbin/policy-rc.d' EXIT; trap 'exit 1' INT TERM; \
	    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; \
	fi; \
	apt-get update -qq && apt-get install -y -qq $$missing >/dev/null

.env:
	cp .env.example .env
	@echo "Created .env from .env.example; edit it to use your official account."

# XGC_RUN_ADDR tells settings.py the address served: with the sandbox and an
# empty REDIRECT_URL, sign-in comes back there, and fans.W002 (printed by
# migrate and runserver before serving) says when REDIRECT_URL names another.
run: export XGC_RUN_ADDR = $(ADDR)
run: install .env
	$(PIPENV) run python manage.py migrate --no-input
	@set -- $$($(PIPENV) run python -c 'import xgc.settings as s; print(s.browser_address("$(ADDR)"), s.REDIRECT_URL or "(empty)")'); \
	open=$$1; \
	echo; \
	echo "  xgc:        http://$$open/   (phone-sized pages; the WeChat sandbox answers for WeChat)"; \
	if [ "$$open" != "$(ADDR)" ]; then \
	    echo "              (runserver serves $(ADDR), which is no address for a browser: open $$open)"; \
	fi; \
	echo "  callback:   $$2   (REDIRECT_URL: where sign-in comes back)"; \
	echo "  menu link:  http://$$open/wechat/login/"; \
	echo "  sandbox:    http://$$open/sandbox/   (test fans, fault injection, the server Token)"; \
	echo "  admin:      http://$$open/admin/   (first: python3 -m pipenv run python manage.py createsuperuser)"; \
	echo "  worker:     sends template messages; runs beside the server and stops with it"; \
	echo
	$(PIPENV) run python manage.py worker --no-reload --skip-checks & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(PIPENV) run python manage.py runserver $(ADDR)

# doctor as `make run` would see it (ADDR included); DOCTOR_ARGS=--online adds WeChat.
doctor: export XGC_RUN_ADDR = $(ADDR)
doctor: install
	$(PIPENV) run python manage.py doctor $(DOCTOR_ARGS)

# Lint, then the whole suite on SQLite, then the database tests again on
# PostgreSQL (they skip, with the reason, when it is not answering).
# Each pass writes a JUnit report; tests/skipped.py then ends the output with
# what was skipped and why, or "nothing skipped", keeping pytest's exit code.
JUNIT := test-artifacts/junit
SKIPPED := $(PIPENV) run python tests/skipped.py $(JUNIT)/SQLite.xml $(JUNIT)/PostgreSQL.xml
test: install test-packages
	$(PIPENV) run ruff check .
	$(PIPENV) run ruff format --check .
	$(PIPENV) run python manage.py makemigrations --check --dry-run --settings=tests.settings
	rm -f $(JUNIT)/SQLite.xml $(JUNIT)/PostgreSQL.xml
	env -u XGC_TEST_DATABASE_URL $(PIPENV) run pytest -m "not postgres" --junitxml=$(JUNIT)/SQLite.xml \
	    || { status=$$?; $(SKIPPED); exit $$status; }
	XGC_TEST_DATABASE_URL=$(TEST_POSTGRES_URL) $(PIPENV) run pytest -m "django_db or postgres" --junitxml=$(JUNIT)/PostgreSQL.xml \
	    || { status=$$?; $(SKIPPED); exit $$status; }
	@$(SKIPPED)

# README's "Benchmark": the instructions of each sign-in request (valgrind),
# the photo pipeline, then the sign-in on SQLite, on
# PostgreSQL (it creates the database xgc_bench next to TEST_POSTGRES_URL's)
# and Redis, beside a minimal app and beside photo uploads. BENCH_ARGS passes
# options, e.g. BENCH_ARGS="--no-reference --fans 200".
bench: install
	$(PIPENV) run python -m tests.bench_requests --instructions
	$(PIPENV) run python -m tests.bench_photos
	$(PIPENV) run python -m tests.bench --database-url $(TEST_POSTGRES_URL) $(BENCH_ARGS)

lint: install
	$(PIPENV) run ruff check .

fmt: install
	$(PIPENV) run ruff check --fix .
	$(PIPENV) run ruff format .

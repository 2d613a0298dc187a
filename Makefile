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

.PHONY: install browser run test lint fmt bench

.venv/.installed: Pipfile.lock
	$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet pipenv
	$(PIPENV) sync --dev
	touch $@

install: .venv/.installed

# Debian's Chromium for the browser tests (Playwright cannot download its own
# here), with fonts so that screenshots show Chinese and emoji.
BROWSER_PACKAGES := chromium fonts-wqy-microhei fonts-noto-color-emoji
browser:
	@if ! dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1; then \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; \
	    else echo "Not root: install $(BROWSER_PACKAGES) with apt-get, or the browser tests skip."; fi; \
	fi

.env:
	cp .env.example .env
	@echo "Created .env from .env.example; edit it to use your official account."

run: install .env
	$(PIPENV) run python manage.py migrate --no-input
	@echo
	@echo "  xgc:        http://$(ADDR)/   (phone-sized pages; the WeChat sandbox answers for WeChat)"
	@echo "  menu link:  http://$(ADDR)/wechat/login/"
	@echo "  sandbox:    http://$(ADDR)/sandbox/   (test fans, fault injection)"
	@echo "  admin:      http://$(ADDR)/admin/   (first: python3 -m pipenv run python manage.py createsuperuser)"
	@echo "  worker:     sends template messages; runs beside the server and stops with it"
	@echo
	$(PIPENV) run python manage.py worker --no-reload & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(PIPENV) run python manage.py runserver $(ADDR)

# Lint, then the whole suite on SQLite, then the database tests again on
# PostgreSQL (they skip, with the reason, when it is not answering).
test: install browser
	$(PIPENV) run ruff check .
	$(PIPENV) run ruff format --check .
	$(PIPENV) run python manage.py makemigrations --check --dry-run --settings=tests.settings
	env -u XGC_TEST_DATABASE_URL $(PIPENV) run pytest -m "not postgres"
	XGC_TEST_DATABASE_URL=$(TEST_POSTGRES_URL) $(PIPENV) run pytest -m "django_db or postgres"

# The sign-in benchmark of README's "Production" section, on PostgreSQL (it
# creates the database xgc_bench next to TEST_POSTGRES_URL's) and Redis.
# BENCH_ARGS passes options, e.g. BENCH_ARGS="--concurrency 48 --fans 500".
bench: install
	$(PIPENV) run python -m tests.bench --database-url $(TEST_POSTGRES_URL) $(BENCH_ARGS)

lint: install
	$(PIPENV) run ruff check .

fmt: install
	$(PIPENV) run ruff check --fix .
	$(PIPENV) run ruff format .

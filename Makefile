# Two commands matter: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-django6 lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/run-tests $(PYTEST_ARGS)

# The same code on the next Django (6.x needs Python 3.12+), its deprecation warnings as
# errors: the tests closest to what Django changes (settings, mail, migrations, the API,
# the admin). PYTHON312 names an interpreter; DJANGO_NEXT the release.
PYTHON312 ?= python3.12
DJANGO_NEXT ?= 6.1.3
VENV_NEXT := .venv-django6
STAMP_NEXT := $(VENV_NEXT)/.installed-stamp
NEXT_TESTS ?= tests/test_settings_start_up.py tests/test_alert_delivery.py \
	tests/test_alert_mail.py tests/test_alert_deadlines.py tests/test_logging.py tests/test_api.py \
	tests/test_api_reach.py tests/test_admin.py tests/test_migrations.py tests/test_migrate_command.py \
	tests/test_adoption.py tests/test_commands.py

$(STAMP_NEXT): pyproject.toml Makefile
	$(PYTHON312) -m venv $(VENV_NEXT)
	$(VENV_NEXT)/bin/python -m pip install --quiet --upgrade "pip==25.3"
	$(VENV_NEXT)/bin/python -m pip install --quiet -e '.[dev]'
	$(VENV_NEXT)/bin/python -m pip install --quiet "Django==$(DJANGO_NEXT)"
	touch $(STAMP_NEXT)

test-django6: $(STAMP_NEXT)
	PATH="$(CURDIR)/$(VENV_NEXT)/bin:$$PATH" TENDEROPS_TEST_DATABASE_NAME=test_tenderops_next \
		bash scripts/run-tests $(NEXT_TESTS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(VENV_NEXT) var/*.sqlite3 test-artifacts

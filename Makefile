# The README's commands. Each target creates the virtual environment if it is missing and installs
# exactly the pinned versions from constraints.txt (no network lookups beyond the package index).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv venv-bench demo test test-fast lint docs lock wheels clean

## the test environment: runtime + sandbox + test tools; the library, the Airflow provider and the
## sandbox editable (the provider so that `airflow providers list` knows `xport` and the DAGs import
## its hook; the sandbox, a test double, is its own distribution and never in the library's wheel)
venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml provider/pyproject.toml \
		xport_sandbox/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip==26.3"
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . -e ./provider -e ./xport_sandbox
	@touch $(STAMP)

## the benchmarks' comparison systems and profilers, on top of the test environment
venv-bench: venv
	$(PY) -m pip install --quiet -r requirements-bench.txt -c constraints.txt

## the three wheels into dist/: xport-etl, xport-airflow-provider and xport-sandbox (the local
## fake of the API, to try a deployment before pointing it at Xportcn: docs/deploy-airflow.md)
wheels: venv
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation -w dist . ./provider ./xport_sandbox

## run the sandbox, the pipeline through Airflow, and print the reports
demo: venv
	$(VENV)/bin/xport-sandbox demo

## the whole test suite, slow tests included (what CI runs)
test: venv
	$(PY) -m pytest

## the inner loop: the suite without the tests marked slow (README, Tests: what is slow and why)
test-fast: venv
	$(PY) -m pytest -m "not slow"

## ruff (lint, and the format every file is in: `ruff format .` writes it), then mypy on the
## library (configured in pyproject.toml, [tool.mypy])
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy xport_etl

## the generated documents: docs/settings.md from the settings' declarations (xport_etl/settings.py)
## and the data dictionary (sql/DATA_DICTIONARY.md, sql/data_dictionary.html); the tests fail when
## a committed one is not what these write
docs: venv
	$(PY) -c "from xport_etl.settings import settings_markdown; print(settings_markdown(), end='')" > docs/settings.md
	$(VENV)/bin/xport-etl docs

## re-pin every installed package after changing requirements*.txt (from the bench environment,
## which holds all three layers, so the one lock covers them all)
lock: venv-bench
	$(PY) -m pip freeze --all --exclude-editable | grep -vE "^(-e|pip==)" > constraints.txt

clean:
	rm -rf $(VENV) .airflow data .pytest_cache build dist provider/build xport_sandbox/build

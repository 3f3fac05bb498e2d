# The README's commands. Each target creates the virtual environment if it is missing and installs
# exactly the pinned versions from constraints.txt (no network lookups beyond the package index).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-fast lint lock clean

venv: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip==26.3"
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

## run the sandbox, the pipeline through Airflow, and print the reports
demo: venv
	$(VENV)/bin/xport-etl demo

## the whole test suite, slow tests included (what CI runs)
test: venv
	$(PY) -m pytest

## the suite without the slow tests
test-fast: venv
	$(PY) -m pytest -m "not slow"

lint: venv
	$(VENV)/bin/ruff check .

## re-pin every installed package after changing requirements.txt
lock: venv
	$(PY) -m pip freeze --all --exclude-editable | grep -vE "^(-e|pip==)" > constraints.txt

clean:
	rm -rf $(VENV) .airflow data .pytest_cache

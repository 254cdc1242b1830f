# Two commands for a fresh machine: `make forecast` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export PYTENSOR_FLAGS ?= base_compiledir=$(CURDIR)/.cache/pytensor

.PHONY: forecast test test-fast lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

## Run the quarterly forecast end to end (fetches data into ./data when the store is empty).
forecast: $(VENV)/.installed
	$(VENV)/bin/regimecast forecast --auto-data $(ARGS)

## Run the whole test suite, slow checks included (what CI runs).
test: $(VENV)/.installed
	$(PY) -m pytest $(ARGS)

## The fast tests only (a few minutes).
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow" $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) .cache

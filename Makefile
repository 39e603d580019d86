# Two entry points that work on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e ".[dev,lab]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/initlab schemes
	$(VENV)/bin/initlab fans "nn.ConvTranspose2d(16, 32, 3, groups=4)" weight
	$(VENV)/bin/initlab fans "nn.MultiheadAttention(64, 4)" in_proj_weight
	$(PY) examples/catalogue_tour.py

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(PY) -m pytest -n 2 tests

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

bench: $(STAMP)
	mkdir -p benchmarks/results
	$(PY) benchmarks/bench_trunc_normal.py --out benchmarks/results/trunc_normal.json

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache

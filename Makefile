# Two entry points that work on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo tour test test-zoo lint bench clean

# The zoo environment: timm needs torchvision, which does not import beside the pinned torch
# 2.13.0 CPU build, so the timm/torchvision zoo runs in its own venv on torch 2.14.1 (a CUDA
# build, ~5.7 GB, run on the CPU); `make test` keeps the small CPU venv.
ZOO_VENV  := .venv-zoo
ZOO_PY    := $(ZOO_VENV)/bin/python
ZOO_STAMP := $(ZOO_VENV)/.installed

$(STAMP): pyproject.toml requirements-dev.txt requirements-nodeps.txt
	@echo "initlab: creating .venv and installing (about 3 minutes on 2 cores)..."
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e ".[dev,lab]"
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

$(ZOO_STAMP): pyproject.toml requirements-zoo.txt
	test -x $(ZOO_PY) || $(PYTHON) -m venv $(ZOO_VENV)
	$(ZOO_PY) -m pip install --quiet --upgrade pip
	$(ZOO_PY) -m pip install --quiet -r requirements-zoo.txt -e .
	touch $(ZOO_STAMP)

# The main job: the default comparison (digits, a 20-layer ReLU net, 11 schemes x 3 seeds), a
# report folder that opens with the verdict.
demo: $(STAMP)
	$(VENV)/bin/initlab compare --out initlab-out/demo

# A short tour of the catalogue and layer-aware fans.
tour: $(STAMP)
	$(VENV)/bin/initlab fans "nn.ConvTranspose2d(16, 32, 3, groups=4)" weight
	$(VENV)/bin/initlab fans "nn.MultiheadAttention(64, 4)" in_proj_weight
	$(PY) examples/catalogue_tour.py

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(PY) -m pytest -n 2 tests

# The timm/torchvision reference zoo (skipped by `make test`, whose torch has no torchvision).
test-zoo: $(ZOO_STAMP)
	HF_HUB_OFFLINE=1 $(ZOO_PY) -m pytest -n 2 -p no:cacheprovider tests/test_zoo_timm.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

# Speed and memory targets, measured (never timed unit tests); results in benchmarks/results/.
bench: $(STAMP)
	mkdir -p benchmarks/results
	$(PY) benchmarks/bench_trunc_normal.py --out benchmarks/results/trunc_normal.json
	$(PY) benchmarks/bench_streams.py --out benchmarks/results/streams.json
	$(PY) benchmarks/bench_normal_kernels.py --out benchmarks/results/normal_kernels.json
	$(PY) benchmarks/bench_compare.py --out benchmarks/results/compare.json
	$(PY) benchmarks/bench_materialize.py --verify --out benchmarks/results/materialize.json
	$(PY) benchmarks/bench_materialize.py --model hf-gpt2,hf-llama --verify \
		--out benchmarks/results/materialize_hf.json
	$(PY) benchmarks/bench_first_touch.py --out benchmarks/results/first_touch.json
	$(PY) benchmarks/bench_sharded.py --out benchmarks/results/sharded.json

clean:
	rm -rf $(VENV) $(ZOO_VENV) build dist src/*.egg-info .pytest_cache .ruff_cache

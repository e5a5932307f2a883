# The README's two commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck layers schemas-check unit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

DEMO_OUT := demo-out

# The demo grows with each issue; today it validates both example estates, then breaks one
# on purpose to show how recon reports a compliance violation (exit 3) and writes SARIF.
demo: $(STAMP)
	@rm -rf $(DEMO_OUT) && mkdir -p $(DEMO_OUT)
	@echo "== recon kinds"
	@$(BIN)/recon kinds
	@echo; echo "== recon validate manifests/examples/energy-desk-eu   (MiFID II energy desk, eu-west-1)"
	@$(BIN)/recon validate manifests/examples/energy-desk-eu
	@echo; echo "== recon validate manifests/examples/fx-desk-us       (CFTC 1.35 + SEC 17a-4 FX desk, us-east-1)"
	@$(BIN)/recon validate manifests/examples/fx-desk-us
	@echo; echo "== a pull request shortens MiFID II retention to 3y and opens the archive to the public:"
	@cp -r manifests/examples/energy-desk-eu $(DEMO_OUT)/energy-desk-eu-broken
	@sed -i 's/retain: 7y /retain: 3y /; ' $(DEMO_OUT)/energy-desk-eu-broken/retention.yaml
	@sed -i 's/publicAccess: blocked/publicAccess: allowed/' $(DEMO_OUT)/energy-desk-eu-broken/archive.yaml
	@$(BIN)/recon validate $(DEMO_OUT)/energy-desk-eu-broken; code=$$?; \
	  echo "-> exit $$code (3 = blocked by compliance findings)"; test $$code -eq 3
	@$(BIN)/recon validate $(DEMO_OUT)/energy-desk-eu-broken --format sarif -o $(DEMO_OUT)/findings.sarif || true
	@$(BIN)/recon validate $(DEMO_OUT)/energy-desk-eu-broken --format json -o $(DEMO_OUT)/findings.json || true
	@echo; echo "demo done: SARIF for GitHub code scanning in $(DEMO_OUT)/findings.sarif, JSON in $(DEMO_OUT)/findings.json"

test: lint typecheck layers schemas-check unit

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests bench
	$(BIN)/ruff format --check reconciler tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

schemas-check: $(STAMP)
	$(BIN)/recon schema --check

unit: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-out

# The README's two commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-worm lint typecheck layers schemas-check unit bench fuzz clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

DEMO_OUT := demo-out
DESK     := $(DEMO_OUT)/energy-desk-eu
RECON    := $(abspath $(BIN))/recon
ARCHIVE  := acme-trading-recordings-eu
# A person changing the sandbox platform by hand (its "admin console"): open the archive.
# The whole story on the embedded sandbox: validate, break a copy on purpose (exit 3, SARIF),
# then plan / apply / drift / revert / a one-way and a forbidden pull request.
demo: $(STAMP)
	@if [ -d $(DESK) ]; then cd $(DESK) && $(RECON) sandbox down > /dev/null 2>&1; fi; true
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
	@cp -r manifests/examples/energy-desk-eu $(DESK)
	@echo; echo "== cd $(DESK) && recon sandbox up   (a Genesys-Cloud-compatible org on loopback: two desks, 20 traders, 300 past calls)"
	@cd $(DESK) && $(RECON) sandbox up | head -7
	@echo; echo "== recon plan -out plan.json   (queues the org already has are adopted; policies and the legal hold are created)"
	@cd $(DESK) && $(RECON) plan -v -out plan.json --detailed-exitcode > ../plan.txt 2>&1; code=$$?; \
	  grep -v '^    + conversations' ../plan.txt; echo "-> exit $$code (2 = changes present; held conversation ids in $(DEMO_OUT)/plan.txt)"; test $$code -eq 2
	@cd $(DESK) && $(RECON) plan --format markdown > ../plan.md; echo "-> the plan as a pull-request comment: $(DEMO_OUT)/plan.md"
	@echo; echo "== recon apply plan.json   (exactly that plan; every step journaled to .recon/state.json)"
	@cd $(DESK) && $(RECON) apply plan.json
	@echo; echo "== recon plan --detailed-exitcode   (right after apply: nothing to do)"
	@cd $(DESK) && $(RECON) plan -v --detailed-exitcode | tail -2
	@echo; echo "== jane.doe turns off in-queue recording on a regulated queue in the admin console"
	@cd $(DESK) && $(RECON) sandbox mutate queues energy-desk-gas --set suppressInQueueCallRecording=true --by jane.doe@acme.example | head -1
	@echo; echo "== recon drift   (names the change, who made it and when, from the Genesys audit log)"
	@cd $(DESK) && $(RECON) drift; code=$$?; echo "-> exit $$code (2 = drift)"; test $$code -eq 2
	@cd $(DESK) && $(RECON) drift --format markdown -o ../drift-alert.md || true
	@echo; echo "== recon apply --auto-approve   (restores it)"
	@cd $(DESK) && $(RECON) apply --auto-approve | tail -3
	@cd $(DESK) && $(RECON) drift | tail -1
	@echo; echo "== the platform's recording export ran only for the last 30 days (sandbox: recon sandbox export)"
	@cd $(DESK) && $(RECON) sandbox export --bucket $(ARCHIVE) --from $$(date -u -d '30 days ago' +%F)
	@echo; echo "== recon verify-archive --from <90 days ago>   (every recorded call archived, with metadata and a matching SHA-256?)"
	@cd $(DESK) && $(RECON) verify-archive --from $$(date -u -d '90 days ago' +%F) > ../verify.txt; code=$$?; \
	  head -4 ../verify.txt; echo "   ..."; tail -2 ../verify.txt; echo "-> exit $$code (2 = gaps)"; test $$code -eq 2
	@cd $(DESK) && $(RECON) verify-archive --from $$(date -u -d '90 days ago' +%F) --format markdown -o ../archive-integrity.md || true
	@echo; echo "== the export is re-run for the whole period; the archive verifies"
	@cd $(DESK) && $(RECON) sandbox export --bucket $(ARCHIVE) --from $$(date -u -d '90 days ago' +%F)
	@cd $(DESK) && $(RECON) verify-archive --from $$(date -u -d '90 days ago' +%F) | tail -2
	@echo; echo "== the trading floor places 30 calls; recon runtime --once stamps the ones not stamped yet (live, each is stamped as it starts)"
	@cd $(DESK) && $(RECON) sandbox floor --queues energy-desk-gas,energy-desk-power --count 30 --rate 10 --seed 1
	@cd $(DESK) && $(RECON) runtime --once --since 30m 2>/dev/null
	@echo; echo "== recon search 'market_snapshot.commodity=Natural_Gas_Hub'   (the auditor's question; every document re-hashed)"
	@cd $(DESK) && $(RECON) search 'market_snapshot.commodity=Natural_Gas_Hub' --from $$(date -u +%F) | awk 'NR<=4; {last=$$0} END {print "   ..."; print last}'
	@cd $(DESK) && $(RECON) search 'market_snapshot.commodity=Natural_Gas_Hub' --format csv -o ../snapshots.csv
	@cd $(DESK) && $(RECON) evidence verify --heads
	@echo; echo "== capture verification: an earlier stretch of the floor, 120 calls; the recorder missed some, cut some short, and the switch did not report some"
	@cd $(DESK) && $(RECON) sandbox floor --queues energy-desk-gas,energy-desk-power,energy-desk-carbon --count 120 --rate 0.2 --missing-rate 0.03 --partial-rate 0.03 --orphan-rate 0.03 --seed 4 --ago 10m
	@echo; echo "== recon verify --from <yesterday> --to <today>   (every CDR the TradeSense collectors read, against the recordings on Genesys)"
	@cd $(DESK) && $(RECON) verify --from $$(date -u -d yesterday +%F) --to $$(date -u +%F) > ../capture.txt; code=$$?; \
	  sed -n '1,12p' ../capture.txt; echo "   ..."; grep -E '^(CRITICAL|MAJOR|MINOR) ' ../capture.txt | cut -c1-150; \
	  echo "-> exit $$code (3 = calls not recorded, below the 99.9% target)"; test $$code -eq 3
	@cd $(DESK) && $(RECON) verify --no-poll --from $$(date -u -d yesterday +%F) --to $$(date -u +%F) --format html -o ../capture-verification.html 2>/dev/null || true
	@cd $(DESK) && $(RECON) verify --no-poll --from $$(date -u -d yesterday +%F) --to $$(date -u +%F) --format markdown -o ../capture-verification.md 2>/dev/null || true
	@echo; echo "== the reviewer finds the first gap was a test call, and tags it; the next report honours it"
	@cd $(DESK) && key=$$($(RECON) verify --no-poll --from $$(date -u -d yesterday +%F) --to $$(date -u +%F) --format csv | awk -F, '$$3=="not_recorded" {print $$1; exit}'); \
	  $(RECON) triage set $$key --tag test-call --note "switch engineer's test call, change CHG-50112" --by compliance.reviewer@acme.example
	@cd $(DESK) && $(RECON) verify --no-poll --from $$(date -u -d yesterday +%F) --to $$(date -u +%F) | grep -E '^(TOTAL|result)'; true
	@echo; echo "== a pull request lengthens COMPLIANCE retention to 10y: one-way, needs --allow-one-way"
	@sed -i 's/defaultRetention: 7y/defaultRetention: 10y/' $(DESK)/archive.yaml
	@cd $(DESK) && $(RECON) plan --format markdown > ../pr-comment.md; echo "-> PR comment in $(DEMO_OUT)/pr-comment.md"
	@cd $(DESK) && $(RECON) apply --auto-approve > /dev/null 2>../one-way.txt; code=$$?; tail -2 ../one-way.txt; \
	  echo "-> exit $$code (refused without --allow-one-way)"; test $$code -eq 1
	@echo; echo "== another pull request shortens it back to 5y: forbidden, the plan is blocked"
	@sed -i 's/defaultRetention: 10y/defaultRetention: 5y/; ' $(DESK)/archive.yaml
	@sed -i 's/retain: 7y /retain: 5y /; ' $(DESK)/retention.yaml
	@cd $(DESK) && $(RECON) plan | tail -4; code=$$?; true
	@cd $(DESK) && $(RECON) plan > /dev/null 2>&1; code=$$?; echo "-> exit $$code (3 = blocked)"; test $$code -eq 3
	@cd $(DESK) && $(RECON) sandbox down
	@echo; echo "demo done: SARIF in $(DEMO_OUT)/findings.sarif, plan in $(DEMO_OUT)/plan.md, PR comment in $(DEMO_OUT)/pr-comment.md, drift alert in $(DEMO_OUT)/drift-alert.md, archive gaps in $(DEMO_OUT)/archive-integrity.md, stamped calls in $(DEMO_OUT)/snapshots.csv, capture verification in $(DEMO_OUT)/capture-verification.html"

test: lint typecheck layers schemas-check unit

# The WORM conformance tier (docs/worm-tier.md): a throwaway Ceph RADOS Gateway on 127.0.0.1
# enforces S3 Object Lock for real; installs Debian's ceph packages when missing (needs root or sudo).
# The cluster is always stopped and its folder removed, also on failure or Ctrl-C.
test-worm: $(STAMP)
	tests/worm/rgw.sh install
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/recon-worm.XXXXXX"); \
	  trap 'tests/worm/rgw.sh stop "$$dir"' EXIT; trap 'exit 130' INT TERM HUP; \
	  echo "tests/worm/rgw.sh start $$dir"; \
	  tests/worm/rgw.sh start "$$dir" > /dev/null || { tail -n 20 "$$dir"/log/*; exit 1; }; \
	  echo "RECON_WORM_ENDPOINT=$$dir/endpoint.json $(BIN)/pytest -q -m worm tests/worm"; \
	  RECON_WORM_ENDPOINT="$$dir/endpoint.json" $(BIN)/pytest -q -m worm tests/worm

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
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_plan_genesys.py
	$(BIN)/python bench/bench_archive.py
	$(BIN)/python bench/bench_verify.py
	$(BIN)/python bench/bench_runtime.py --platform memory
	$(BIN)/python bench/bench_runtime.py --platform sandbox --soak 60

# Coverage-guided fuzzing of the YAML and template loader (tests/fuzz/fuzz_loader.py) for
# FUZZ_SECONDS; not part of `make test`. Findings are written as crash-*/timeout-* files.
FUZZ_SECONDS ?= 60
FUZZ_CORPUS  ?= .fuzz-corpus
fuzz: $(STAMP)
	@$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,fuzz]'
	$(BIN)/python tests/fuzz/test_fuzz_smoke.py $(FUZZ_CORPUS)
	$(BIN)/python tests/fuzz/fuzz_loader.py -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=3072 $(FUZZ_CORPUS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-out .fuzz-corpus

# greenkfp: every target creates .venv and installs the project when it is missing or stale.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.greenkfp-installed

BENCHES := gate training inference sci selection pipeline gatekeeper report serving

.PHONY: demo demo-digits demo-governance test mutation compile check-compiled bench $(addprefix bench-,$(BENCHES)) bench-selection-stability clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "greenkfp needs Python >= 3.11, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# the wide workload: the variants' inference costs differ by far more than measurement noise
demo: $(STAMP)
	@mkdir -p local_outputs
	$(BIN)/greenkfp run-local --pipeline training --dataset wide --regions GB DE-LU US-CAL-CISO --duration 1h --max-delay 12h \
		--summary-json local_outputs/summary.json

demo-digits: $(STAMP)
	$(BIN)/greenkfp run-local --pipeline training --dataset digits --regions GB DE-LU US-CAL-CISO --duration 1h --max-delay 12h

# the governance demo: a realistic quarter of three teams' budgets in a ledger, the audit, the quarterly report
GOVERNANCE := local_outputs/governance
demo-governance: $(STAMP)
	@rm -rf $(GOVERNANCE) && mkdir -p $(GOVERNANCE)
	$(BIN)/greenkfp report seed-demo --ledger sqlite:///$(GOVERNANCE)/ledger.db --quarter 2026Q3 \
		--exports $(GOVERNANCE)/exports
	$(BIN)/greenkfp audit --ledger sqlite:///$(GOVERNANCE)/ledger.db --from 2026-04 --to 2026-06 \
		--gcp-export $(GOVERNANCE)/exports/gcp-carbon-footprint.jsonl \
		--aws-export $(GOVERNANCE)/exports/aws-carbon-emissions.csv \
		--project-map $(GOVERNANCE)/exports/project-map.json --output $(GOVERNANCE)/audit
	$(BIN)/greenkfp report quarterly --quarter 2026Q3 --ledger sqlite:///$(GOVERNANCE)/ledger.db \
		--baseline $(GOVERNANCE)/audit/baseline.json --output $(GOVERNANCE)

test: $(STAMP)
	$(BIN)/python -m pytest

# mutation testing of the core modules (not part of `make test`): modules and their tests in
# tests/mutation/modules.toml, equivalent mutants set aside in tests/mutation/equivalent.toml,
# the report in build/mutation/report.md. A subset: make mutation MODULES="windows pareto";
# after adding tests, only the last run's survivors again: make mutation MODULES=windows SURVIVORS=1
# MODULES given but empty is refused (not taken as "all"); SURVIVORS=1 (or y, yes, true, on) turns it on
mutation: $(STAMP)
	$(BIN)/python scripts/mutation.py $(if $(filter-out undefined default,$(origin MODULES)),--modules $(MODULES)) \
		$(if $(filter 1 y yes true on Y YES TRUE ON Yes True On,$(SURVIVORS)),--survivors)

compile: $(STAMP)
	$(BIN)/greenkfp compile --output-dir compiled

check-compiled: $(STAMP)
	$(BIN)/greenkfp compile --check --output-dir compiled

bench: $(addprefix bench-,$(BENCHES)) bench-selection-stability

$(addprefix bench-,$(BENCHES)): bench-%: $(STAMP)
	$(BIN)/python scripts/bench_$*.py

# the flagship's verdict over 10 re-measurements, new (interleaved, intervals) against old behaviour
bench-selection-stability: $(STAMP)
	$(BIN)/python scripts/bench_selection_stability.py --json build/bench_selection_stability.json

clean:
	rm -rf $(VENV) build dist local_outputs *.egg-info .pytest_cache

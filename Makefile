# greenkfp: every target creates .venv and installs the project when it is missing or stale.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.greenkfp-installed

BENCHES := gate training inference sci selection pipeline

.PHONY: demo test compile check-compiled bench $(addprefix bench-,$(BENCHES)) clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "greenkfp needs Python >= 3.11, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/greenkfp run-local --pipeline training --regions GB DE-LU US-CAL-CISO --duration 1h --max-delay 12h

test: $(STAMP)
	$(BIN)/python -m pytest

compile: $(STAMP)
	$(BIN)/greenkfp compile --output-dir compiled

check-compiled: $(STAMP)
	$(BIN)/greenkfp compile --check --output-dir compiled

bench: $(addprefix bench-,$(BENCHES))

$(addprefix bench-,$(BENCHES)): bench-%: $(STAMP)
	$(BIN)/python scripts/bench_$*.py

clean:
	rm -rf $(VENV) build dist local_outputs *.egg-info .pytest_cache

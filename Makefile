# Two commands on a fresh machine: `make console` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DB     ?= data/opswb.duckdb
PORT   ?= 8866

.PHONY: venv system-deps console test sample bench clean

$(STAMP): pyproject.toml opswb/core/_jsonscan.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[api,console,report,postgres,test]'
	touch $(STAMP)

venv: $(STAMP)

# Load the sample data only into an empty store (a missing file is an empty store).
sample: $(STAMP)
	@$(BIN)/python -c "import opswb, sys; sys.exit(0 if opswb.connect('$(DB)').health()['raw_events'] else 1)" \
		|| $(BIN)/opswb ingest data/sample_events.jsonl --db $(DB)

console: sample
	$(BIN)/opswb console --db $(DB) --port $(PORT)

# Debian packages the tests drive (Chromium, PostgreSQL), installed when missing.
system-deps:
	bash scripts/system-deps.sh

# The whole suite: unit, scenario, API, browser and notebook (nbval) tests.
test: $(STAMP) system-deps
	rm -rf build/nbval && mkdir -p build/nbval
	$(BIN)/opswb ingest data/sample_events.jsonl --db build/nbval/opswb.duckdb > /dev/null
	OPSWB_DB=$(CURDIR)/build/nbval/opswb.duckdb $(BIN)/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider -q

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py --n 1000000

clean:
	rm -rf build test-artifacts reports .pytest_cache

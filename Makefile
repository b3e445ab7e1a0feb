# Two commands: `make run` and `make test`. Each sets itself up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean chromium vendor

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(STAMP)

tests/node_modules/.installed: tests/package.json tests/package-lock.json
	cd tests && npm ci --silent --no-audit --no-fund
	touch $@

# the dashboard page's browser libraries (pinned npm packages, served by web/dashboard.py)
web/static/vendor-src/node_modules/.installed: web/static/vendor-src/package.json web/static/vendor-src/package-lock.json
	cd web/static/vendor-src && npm ci --silent --no-audit --no-fund
	touch $@

# the browser test drives the OS package's Chromium (never a downloaded browser)
chromium:
	command -v chromium || (apt-get update && apt-get install -y chromium)

vendor: web/static/vendor-src/node_modules/.installed

# The server needs nothing but Python; only the dashboard page's libraries come from npm.
run: $(STAMP)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) -s vendor; \
	else echo "npm not found: the server runs, but the dashboard page needs Node.js (then: make vendor)"; fi
	$(BIN)/switchboard serve --demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check actors protocol web tests benchmarks
	$(BIN)/mypy protocol actors web

test: $(STAMP) tests/node_modules/.installed web/static/vendor-src/node_modules/.installed chromium
	$(BIN)/ruff check actors protocol web tests benchmarks
	$(BIN)/mypy protocol actors web
	$(BIN)/python -m pytest -q

# Node's socket.io server, pinned, as a benchmark peer (skipped when Node.js is not installed)
benchmarks/peers/node/node_modules/.installed: benchmarks/peers/node/package.json benchmarks/peers/node/package-lock.json
	cd benchmarks/peers/node && npm ci --silent --no-audit --no-fund
	touch $@

bench: $(STAMP)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) -s benchmarks/peers/node/node_modules/.installed; fi
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) tests/node_modules web/static/vendor-src/node_modules benchmarks/peers/node/node_modules data

# a longer run of the live-server fuzzing in tests/hardening/test_fuzz.py (the normal run: 150)
.PHONY: fuzz
fuzz: $(STAMP)
	FUZZ_EXAMPLES=5000 SCHEMATHESIS_EXAMPLES=1000 $(BIN)/python -m pytest -q tests/hardening -k "fuzz or schemathesis" --timeout 3600

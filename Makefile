# Two commands: `make run` and `make test`. Each sets itself up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean chromium cluster-tools vendor fuzz conformance

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(STAMP)

tests/node_modules/.installed: tests/package.json tests/package-lock.json
	cd tests && npm ci --silent --no-audit --no-fund
	touch $@

# the browser test drives the OS package's Chromium (never a downloaded browser)
chromium:
	command -v chromium || (apt-get update && apt-get install -y chromium)

# the cluster and PostgreSQL tests start their own Redis, HAProxy and PostgreSQL from the OS
# packages (never the machine's running ones: private instances on free ports)
cluster-tools:
	command -v redis-server && command -v haproxy && ls /usr/lib/postgresql/*/bin/initdb || \
	  (apt-get update && apt-get install -y redis-server haproxy postgresql)

# The server needs nothing but Python: the browser libraries it serves are committed, pinned in
# web/vendor/package.json. `make vendor` refreshes those copies (and their licences) from npm:
# the Socket.IO client, Chart.js, and the Socket.IO Admin UI's build with its icon font.
CLIENT := web/sockets/client
CHARTS := web/apps/dashboard/static/vendor
ADMIN_UI := web/apps/admin_ui/static
vendor:
	cd web/vendor && npm ci --silent --no-audit --no-fund
	cp web/vendor/node_modules/socket.io-client/dist/socket.io.min.js \
	   web/vendor/node_modules/socket.io-client/dist/socket.io.esm.min.js \
	   web/vendor/node_modules/socket.io-client/dist/socket.io.msgpack.min.js $(CLIENT)/
	cp web/vendor/node_modules/socket.io-client/LICENSE $(CLIENT)/LICENSE
	cp web/vendor/node_modules/chart.js/dist/chart.umd.min.js $(CHARTS)/
	cp web/vendor/node_modules/chart.js/LICENSE.md $(CHARTS)/LICENSE.chart.js.md
	rm -rf $(ADMIN_UI) && mkdir -p $(ADMIN_UI)/mdi/css $(ADMIN_UI)/mdi/fonts
	cd web/vendor/node_modules/@socket.io/admin-ui && \
	  cp -r ui/dist/. $(CURDIR)/$(ADMIN_UI)/ && cp LICENSE $(CURDIR)/$(ADMIN_UI)/LICENSE
	find $(ADMIN_UI) -name '*.map' -delete
	cd web/vendor/node_modules/@mdi/font && \
	  cp css/materialdesignicons.min.css $(CURDIR)/$(ADMIN_UI)/mdi/css/ && \
	  cp fonts/materialdesignicons-webfont.woff2 $(CURDIR)/$(ADMIN_UI)/mdi/fonts/ && \
	  cp LICENSE $(CURDIR)/$(ADMIN_UI)/mdi/LICENSE

run: $(STAMP)
	$(BIN)/switchboard serve --demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check actors protocol web tests benchmarks
	$(BIN)/mypy protocol actors web
	$(BIN)/lint-imports

# the applications' suites again with every server on PostgreSQL (a private one the tests start)
POSTGRES_SUITES := tests/web/apps/chat tests/web/apps/analytics tests/web/apps/visitors \
  tests/web/apps/guild tests/web/sockets/test_recovery.py tests/web/test_operations.py

test: $(STAMP) tests/node_modules/.installed chromium cluster-tools
	$(BIN)/ruff check actors protocol web tests benchmarks
	$(BIN)/mypy protocol actors web
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q
	SWITCHBOARD_TEST_BACKEND=postgresql $(BIN)/python -m pytest -q $(POSTGRES_SUITES)

# Node's socket.io server, pinned, as a benchmark peer (skipped when Node.js is not installed)
benchmarks/peers/node/node_modules/.installed: benchmarks/peers/node/package.json benchmarks/peers/node/package-lock.json
	cd benchmarks/peers/node && npm ci --silent --no-audit --no-fund
	touch $@

bench: $(STAMP)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) -s benchmarks/peers/node/node_modules/.installed; fi
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) tests/node_modules web/vendor/node_modules benchmarks/peers/node/node_modules data

# a longer run of the live-server fuzzing in tests/hardening/test_fuzz.py (the normal run: 150)
fuzz: $(STAMP)
	FUZZ_EXAMPLES=5000 SCHEMATHESIS_EXAMPLES=1000 $(BIN)/python -m pytest -q tests/hardening -k "fuzz or schemathesis" --timeout 3600

# the official Socket.IO protocol suites, from a local checkout of socketio/socket.io (by hand:
# CI cannot reach the repository, and the suites are never copied here)
conformance: $(STAMP)
	$(BIN)/python tests/conformance/run_official.py $(SUITES) --runs $(or $(RUNS),1)

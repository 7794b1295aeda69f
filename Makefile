# servicepoint — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages the test suite talks to for real: browser, database, TURN, Go (interop check),
# wrk (the HTTP load generator of make bench).
TEST_DEBS := chromium postgresql coturn golang-go golang-golang-x-mod-dev fonts-noto-cjk wrk

.PHONY: run test test-deps system-deps bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

## run: install, create var/servicepoint.db with demo data on first start, serve on :8000
run: $(VENV)/.installed
	$(BIN)/servicepoint demo
	$(BIN)/servicepoint serve --host 127.0.0.1 --port 8000

## system-deps: Debian packages for the real-parts tests (installed only when missing)
system-deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test-deps: $(VENV)/.installed-test system-deps

## test: the whole suite — unit, HTTP, PostgreSQL, WebRTC and browser tests
test: test-deps
	SERVICEPOINT_REQUIRE_PG=1 SERVICEPOINT_REQUIRE_BROWSER=1 SERVICEPOINT_REQUIRE_GO=1 $(BIN)/pytest -p no:cacheprovider

## bench: print the speed and memory figures (no assertions); several minutes
bench: test-deps
	$(BIN)/python bench/intake_bench.py
	$(BIN)/python bench/audit_bench.py
	$(BIN)/python bench/verify_bench.py
	$(BIN)/python bench/pages_bench.py
	$(BIN)/python bench/call_setup_bench.py
	$(BIN)/python bench/rtc_bench.py
	$(BIN)/python bench/login_bench.py

lint: $(VENV)/.installed-test
	$(BIN)/pip install --quiet ruff==0.17.5 mypy==2.4.1
	$(BIN)/ruff check .
	$(BIN)/mypy --ignore-missing-imports outlet partners audit web remote_assist

clean:
	rm -rf $(VENV) var .pytest_cache

# cachetop: `make demo` to see it, `make test` to check it.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
APT_PACKAGES := redis-server memcached
# Only `make test` needs these (tests/integration/test_prometheus_real.py runs a real Prometheus;
# tests/e2e/test_serve_chromium.py opens `cachetop serve` in headless Chromium; the issue-19 tests run
# promtool (in the prometheus package) and a real Alertmanager).
TEST_APT_PACKAGES := prometheus tmux chromium prometheus-alertmanager

.PHONY: all test demo bench screenshots lint format servers test-tools clean help

help:
	@echo "make demo         local redis + memcached with a realistic workload, and the dashboard on them"
	@echo "make test         the whole test suite (installs what it needs first)"
	@echo "make bench        benchmarks, each against a reference measured in the same run"
	@echo "make screenshots  regenerate screenshots/*.svg from the real app"
	@echo "make lint         ruff check + ruff format --check"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# redis-server and memcached come from apt when they are missing and apt is usable.
servers:
	@missing=""; \
	for bin in redis-server redis-cli redis-benchmark memcached; do command -v $$bin >/dev/null 2>&1 || missing="$$missing $$bin"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing $(APT_PACKAGES) (missing:$$missing)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then \
	    echo "installing $(APT_PACKAGES) with sudo (missing:$$missing)"; \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	  else \
	    echo "missing:$$missing. Install redis-server (with redis-cli, redis-benchmark) and memcached, e.g." >&2; \
	    echo "  Debian/Ubuntu: sudo apt-get install redis-server memcached" >&2; \
	    echo "  macOS:         brew install redis memcached" >&2; \
	    exit 1; \
	  fi; \
	fi

# Tools only the tests need, from apt when missing; without them those tests fail (never skip).
test-tools:
	@{ command -v prometheus && command -v promtool && command -v tmux && command -v chromium \
	   && command -v prometheus-alertmanager; } >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing $(TEST_APT_PACKAGES) for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEST_APT_PACKAGES) >/dev/null; \
	  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then \
	    echo "installing $(TEST_APT_PACKAGES) with sudo for the tests"; \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEST_APT_PACKAGES) >/dev/null; \
	  else \
	    echo "missing: prometheus, tmux, chromium or prometheus-alertmanager (the real-Prometheus, terminal, browser and Alertmanager tests need them), e.g." >&2; \
	    echo "  Debian/Ubuntu: sudo apt-get install prometheus tmux chromium prometheus-alertmanager" >&2; \
	    echo "  macOS:         brew install prometheus alertmanager tmux; brew install --cask chromium" >&2; \
	  fi; \
	}

test: $(STAMP) servers test-tools
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check cachetop tests bench plugins
	$(VENV)/bin/ruff format --check cachetop tests bench plugins

format: $(STAMP)
	$(VENV)/bin/ruff format cachetop tests bench plugins
	$(VENV)/bin/ruff check --fix cachetop tests bench plugins

demo: $(STAMP) servers
	$(VENV)/bin/cachetop demo

bench: $(STAMP) servers
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

screenshots: $(STAMP)
	$(PY) -m cachetop.tui.screenshots screenshots

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

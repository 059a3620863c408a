# Two entry points set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check clean tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ordermon demo

test: $(STAMP) tools
	$(BIN)/python -m pytest -q

# Debian's Alertmanager for tests/alerts/test_alertmanager.py: installed when root with
# apt-get (once; a no-op when present), otherwise skipped with a note (the test then
# skips, or fails under CI=true, saying so).
AM_BIN := command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1
tools:
	@if $(AM_BIN); then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "make tools: installing prometheus-alertmanager (apt-get)"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends prometheus-alertmanager >/dev/null \
		|| echo "make tools: prometheus-alertmanager could not be installed"; \
	else \
		echo "make tools: not root or no apt-get: prometheus-alertmanager not installed"; \
	fi

check: $(STAMP)
	$(BIN)/ruff check monitor alerts streams tests
	$(BIN)/mypy monitor alerts

clean:
	rm -rf $(VENV) build *.egg-info

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

# External tools the tests drive (Debian packages): prometheus (prometheus + promtool, for
# tests/deploy), prometheus-alertmanager (tests/alerts/test_alertmanager.py), chromium (the
# status-page browser test) and docker-compose (`docker-compose config` on
# deploy/docker-compose.yml; the docker here has no compose plugin). Installed when root with
# apt-get, only what is missing, in one apt-get call (a no-op when all are present); otherwise
# a note, and the tests needing a missing tool skip (or fail under CI=true) saying so.
tools:
	@missing=""; \
	{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || missing="$$missing prometheus"; \
	{ command -v prometheus-alertmanager || command -v alertmanager; } >/dev/null 2>&1 \
		|| missing="$$missing prometheus-alertmanager"; \
	{ command -v chromium || command -v chromium-browser; } >/dev/null 2>&1 || missing="$$missing chromium"; \
	{ docker compose version || command -v docker-compose; } >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "make tools: installing$$missing (apt-get)"; \
		log=$$(apt-get update -qq 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			-o DPkg::Lock::Timeout=300 --no-install-recommends $$missing 2>&1) \
		|| { echo "$$log" | tail -n 5; echo "make tools:$$missing could not be installed"; }; \
	else \
		echo "make tools: not root or no apt-get:$$missing not installed"; \
	fi

check: $(STAMP)
	$(BIN)/ruff check monitor alerts streams tests
	$(BIN)/mypy monitor alerts

clean:
	rm -rf $(VENV) build *.egg-info

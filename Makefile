# PesaTab: `make run` starts the demo, `make test` runs the whole suite. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi.py
HOST ?= 127.0.0.1
PORT ?= 5000
HTMX_VERSION ?= 2.0.11

.PHONY: run test lint deps browser bench vendor-htmx clean translations

# Reinstall only when pyproject.toml changes.
$(VENV)/.deps: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

deps: $(VENV)/.deps

# The Kiswahili catalogue: the parts of app/translations/sw/parts merged and compiled.
TRANSLATION_PARTS := $(wildcard app/translations/*/parts/*.po)
translations: deps $(TRANSLATION_PARTS)
	$(BIN)/python -m app.web.i18n_compile

run: deps translations
	$(BIN)/flask db upgrade
	$(BIN)/flask demo
	$(BIN)/flask run --host $(HOST) --port $(PORT) --no-reload --with-threads

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Browser tests drive Debian's Chromium; a missing browser fails them, so install it here.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "The browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

test: lint browser translations
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: deps
	$(BIN)/python -m bench

vendor-htmx:
	rm -rf /tmp/pesatab-htmx && mkdir -p /tmp/pesatab-htmx
	cd /tmp/pesatab-htmx && npm pack htmx.org@$(HTMX_VERSION) >/dev/null && tar xzf htmx.org-*.tgz
	cp /tmp/pesatab-htmx/package/dist/htmx.min.js app/static/vendor/htmx.min.js
	sha256sum app/static/vendor/htmx.min.js

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

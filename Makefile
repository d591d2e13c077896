# One command to run the app, one to run every test. Both set up what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test bench setup setup-dev browser clean

run: setup  ## set up, then start the dashboard on the built-in default (MNIST-5k)
	$(PY) -m ui.serve --server.port $(PORT)

test: setup-dev browser  ## set up, lint, then run every test (pytest's "no tests" exit 5 counts as success)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -p no:cacheprovider; status=$$?; if [ $$status -eq 5 ]; then exit 0; fi; exit $$status

bench: setup  ## the full solver benchmark (minutes); writes benchmarks/results/
	$(PY) benchmarks/solver_benchmark.py

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

browser:  ## Debian's Chromium for the real-browser tests (Playwright cannot download browsers here)
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

clean:
	rm -rf $(VENV)

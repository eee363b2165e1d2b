# The two commands that matter: `make up` runs the academy, `make test` tests it.
# Both install what Python needs into .venv first (uv when it can be had, pip otherwise).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install tools up test lint check bench clean

# A line per step, and uv's (or pip's) own progress: a first install takes about 30 s.
$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "==> creating $(VENV) (python3 -m venv)"; python3 -m venv $(VENV); }
	@test -x $(VENV)/bin/uv || { echo "==> installing uv into $(VENV) (pip; about 5 s)"; \
	  $(VENV)/bin/pip install --disable-pip-version-check --progress-bar on uv || echo "    no uv: pip will install the project"; }
	@echo "==> installing the platform and its dependencies into $(VENV)"
	@if [ -x $(VENV)/bin/uv ]; then $(VENV)/bin/uv pip install --python $(PY) -e '.[dev]'; \
	 else $(VENV)/bin/pip install --disable-pip-version-check --progress-bar on -e '.[dev]'; fi
	@rm -f $(VENV)/.installed-*; touch $@
	@echo "==> installed; .venv/bin/cerebrum is ready"

install: $(STAMP)

# Debian tools the tests drive for real: promtool and prometheus (alert rules, a real scrape),
# amtool (the Alertmanager config), kubectl (kustomize builds compared with ours) and postgres_exporter
# (`cerebrum up --distributed --exporters`, which DatabaseConnectionsHigh reads); chromium renders
# the offline API docs headless (tests/services/kit/test_docs.py).
TOOLS := promtool:prometheus amtool:prometheus-alertmanager kubectl:kubectl \
	prometheus-postgres-exporter:prometheus-postgres-exporter chromium:chromium
tools:
	@missing=""; for pair in $(TOOLS); do command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages the tests use:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) \
	  >/dev/null || { echo "could not install$$missing: run 'apt-get install$$missing' as root"; exit 1; }; fi

# UP_ARGS passes options on, e.g. make up UP_ARGS="--port 8100".
up: install
	$(VENV)/bin/cerebrum up $(UP_ARGS)

# Two pytest workers (pytest-xdist), a test file each at a time: the long files mostly wait (the
# chaos run on its alerts, Prometheus on its scrapes), and each test has its own schema, Redis
# prefix and vhost, so files may run side by side. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
test: install tools
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

check: lint test

bench: install
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

# The connector's everyday commands. `make test` is what CI runs.
PYTHON ?= python3

.PHONY: install test lint test-sqlite demo bench lock mutate mutate-changed

install:
	$(PYTHON) -m pip install -e ".[test]"

lint:
	ruff check .
	ruff format --check .

# Lint, then the full suite on PostgreSQL (data-layer tests also on SQLite), on two workers.
test: lint
	$(PYTHON) -m pytest -q -n 2

# Same suite with SQLite as the connector's database.
test-sqlite:
	TEST_DB=sqlite $(PYTHON) -m pytest -q -n 2

# Web + workers + scheduler against the sandboxes with demo data (needs Redis; Ctrl-C stops).
# Installs the project first when its packages (sandbox included) are missing.
demo:
	@$(PYTHON) -c "import flask_admin, localstripe, rq_scheduler, webapp" 2>/dev/null \
		|| $(PYTHON) -m pip install -q -e ".[test]"
	$(PYTHON) -m sandbox.demo $(DEMO_ARGS)

# Regenerate requirements.txt, the fully pinned lock that deploys install (Heroku's Python
# support reads it), from pyproject.toml's dependencies. Keeps the pins already chosen;
# LOCK_ARGS="--upgrade-package stripe" moves one package, LOCK_ARGS=--upgrade all of them.
lock:
	$(PYTHON) -m pip install -q "pip-tools>=7.4"
	$(PYTHON) -m piptools compile --quiet --strip-extras --no-emit-index-url \
		--no-emit-find-links --no-emit-trusted-host --newline LF $(LOCK_ARGS) \
		--output-file requirements.txt pyproject.toml

# Mutation testing of the money rules and the ledger ([tool.mutmut] in pyproject.toml): mutmut's
# results, a score per module, and a failure when a mutant survives that
# .ci/equivalent_mutants.txt does not list. Not part of `make test`: about 1 h on two busy
# cores for the whole set (docs/testing.md, "Mutation testing"). MUTATE_CHILDREN mutants at once.
MUTATE_CHILDREN ?= 2
mutate:
	$(PYTHON) .ci/mutate.py --children $(MUTATE_CHILDREN)

# The same over the configured modules this branch changed since it left BASE (committed or
# not), e.g. `make mutate-changed BASE=main`; says so and succeeds when none changed.
BASE ?= $(shell git rev-parse -q --verify origin/main >/dev/null && echo origin/main || echo main)
mutate-changed:
	$(PYTHON) .ci/mutate.py --children $(MUTATE_CHILDREN) --base $(BASE)

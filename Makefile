# PartyQuiz entry points. The README names `make demo` and `make test`; the rest are for
# contributors. Every target installs what it needs through hack/bootstrap.sh, so a fresh
# machine needs nothing but this checkout.

SHELL := /bin/bash
.DEFAULT_GOAL := help

export PARTYQUIZ_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/partyquiz
# The machine's Go lives in /usr/local/go; only the control-plane build uses it.
export PATH := $(HOME)/.local/bin:$(PATH):/usr/local/go/bin
UV ?= uv
RUN := $(UV) run --frozen --all-extras
PYTEST := $(RUN) pytest

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install uv and the Python dependencies (locked)
	@hack/bootstrap.sh python

.PHONY: test-deps
test-deps: ## Install everything the whole suite needs (Debian packages, control-plane binaries)
	@hack/bootstrap.sh test

.PHONY: demo
demo: ## Run the platform locally (SQLite, in-process game state); LAN=1 lets phones on your network join
	@hack/bootstrap.sh demo
	@$(if $(LAN),PARTYQUIZ_DEMO_LAN=1 )$(UV) run --frozen --no-sync python -m partyquiz_web.demo

.PHONY: lint
lint: deps ## ruff, mypy --strict, import-linter
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) lint-imports
	$(RUN) python -m partyquiz_operator.generate --check

.PHONY: generate
generate: deps ## Regenerate the CRD, its reference docs, alert rules and dashboard from the operator's model
	$(RUN) python -m partyquiz_operator.generate

.PHONY: fmt
fmt: deps ## Format and auto-fix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

# Lint first; then Debian's packages, and the groups of hack/test_all.py side by side (it builds
# the cluster binaries and images once, while the tests that need neither already run).
.PHONY: test
test: lint ## Install what the suite needs and run all of it, e2e included
	@hack/bootstrap.sh test-host
	$(RUN) python hack/test_all.py

.PHONY: test-unit
test-unit: deps ## Pure unit tests only
	$(PYTEST) tests/unit

.PHONY: test-integration
test-integration: test-deps ## Tests against real PostgreSQL and Redis
	$(PYTEST) tests/integration

.PHONY: test-e2e
test-e2e: test-deps ## Tests against the local Kubernetes control plane
	$(PYTEST) tests/e2e

.PHONY: test-browser
test-browser: test-deps ## Player and host pages in Debian's chromium
	$(PYTEST) tests/browser

-include hack/cluster/cluster.mk
-include hack/images/images.mk
-include bench/bench.mk

# npsloop: every command a person runs is a target here. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
BOOTSTRAP := .cache/bootstrap
UV ?= $(shell command -v uv 2>/dev/null || echo $(BOOTSTRAP)/bin/uv)
PYTEST_ARGS ?=
BENCH_EVENTS ?= 20000
CHAOS_EVENTS ?= 20000
SEED ?= 1

.PHONY: help install browser run demo up down status logs deploy-files deploy-check test test-fast lint schemas policy-check bench bench-ingest bench-classifier eval-sentiment eval-sentiment-ceiling eval-themes eval-flags kafka-start kafka-stop kafka-status clean bench-notifier chaos

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BOOTSTRAP)/bin/uv:
	@echo "uv not found: installing uv $(UV_VERSION) into $(BOOTSTRAP) (PyPI)"
	python3 -m venv $(BOOTSTRAP)
	$(BOOTSTRAP)/bin/pip install -q "uv==$(UV_VERSION)"

# Bytecode compiled once here, for the dependencies and for our own sources (the workspace packages
# are editable installs, which uv does not compile). Where PYTHONDONTWRITEBYTECODE is set (many
# images and CI runners), Python would otherwise compile every module it imports on every start:
# `npsloop --help` took 4.2 s instead of 1.6, and the tests start dozens of Python processes. Up to date,
# both steps take a fraction of a second; an edited file is recompiled when imported, as ever.
install: $(if $(filter $(BOOTSTRAP)/bin/uv,$(UV)),$(BOOTSTRAP)/bin/uv) ## Create .venv with every dependency (uv sync --frozen)
	$(UV) sync --frozen --python 3.11 --compile-bytecode
	@$(UV) run --frozen python -m compileall -q -j 0 src libs schemas services bench deploy > /dev/null

run: install ## Run the whole loop in one process: in-memory bus, embedded Postgres, mail to .npsloop/mail
	$(UV) run --frozen npsloop run

demo: install ## A realistic quarter for four stores, then the embedded default with the dashboard opened
	$(UV) run --frozen npsloop demo

TRACING ?=

up: install ## Start Kafka, Postgres and every service as its own process on 127.0.0.1; waits for /readyz (TRACING=console|otlp)
	bash deploy/local/kafka.sh resolve >/dev/null
	$(UV) run --frozen python -m npsloop.stack up $(if $(TRACING),--tracing $(TRACING))

status: ## Each process of the local stack: pid, port, readiness, consumer lag
	@$(UV) run --frozen python -m npsloop.stack status

logs: ## Follow the logs of every process of the local stack (Ctrl-C to stop following)
	@$(UV) run --frozen python -m npsloop.stack logs

down: ## Stop the local stack (services, Postgres, Kafka), by pid
	@$(UV) run --frozen python -m npsloop.stack down

browser: ## Install Debian's chromium for the browser tests (Playwright cannot download its own here)
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium (apt)"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium >/dev/null; }

DEPLOY_TOOLS := .cache/deploy-tools

$(DEPLOY_TOOLS)/.installed: deploy/checks/requirements.txt $(if $(filter $(BOOTSTRAP)/bin/uv,$(UV)),$(BOOTSTRAP)/bin/uv)
	$(UV) venv -q --allow-existing --python 3.11 $(DEPLOY_TOOLS)
	$(UV) pip install -q --python $(DEPLOY_TOOLS)/bin/python -r deploy/checks/requirements.txt
	touch $@

deploy-files: install ## Regenerate Dockerfiles, compose.yaml, the Kubernetes base, dashboard and alerts from the list of services
	$(UV) run --frozen python -m npsloop.stack.deploy_files

deploy-check: install $(DEPLOY_TOOLS)/.installed ## Offline: kustomize renders, schemas, checkov, hadolint, compose (tools in .cache/deploy-tools)
	@command -v kubectl >/dev/null 2>&1 || { echo "installing kubectl (apt)"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq kubernetes-client >/dev/null; }
	$(UV) run --frozen python -m npsloop.stack.deploy_files --check
	$(DEPLOY_TOOLS)/bin/python deploy/checks/check.py

test: install lint browser deploy-check ## Install what is missing, lint, check deploy/ offline, start real Kafka and Postgres, run every test
	bash deploy/local/kafka.sh resolve
	$(UV) run --frozen pytest $(PYTEST_ARGS)

test-fast: install ## Only the tests that need no Kafka broker
	$(UV) run --frozen pytest -m "not kafka" $(PYTEST_ARGS)

lint: install ## ruff and mypy (strict)
	$(UV) run --frozen ruff check .
	$(UV) run --frozen mypy $(addprefix -p ,npsloop_schemas npsloop_platform npsloop_ingest npsloop_classifier npsloop_actions npsloop_notifier npsloop_reporting npsloop)

schemas: install ## Export JSON Schema per event and the AsyncAPI document to schemas/
	$(UV) run --frozen python -m npsloop_schemas.export schemas/jsonschema

policy-check: install ## Check an actions policy file as actions would at start (POLICY=path; default: the shipped one)
	$(UV) run --frozen python -m npsloop_actions.policy $(POLICY)

bench: install ## End-to-end benchmark on real Kafka and Postgres, services as separate processes (BENCH_EVENTS=20000)
	bash deploy/local/kafka.sh resolve
	$(UV) run --frozen python -m bench.e2e --events $(BENCH_EVENTS)

chaos: install ## Faults under load: kill, bounce and starve every part, then count what was lost (SEED=1 CHAOS_EVENTS=20000)
	bash deploy/local/kafka.sh resolve
	$(UV) run --frozen python -m bench.chaos --seed $(SEED) --events $(CHAOS_EVENTS)

bench-ingest: install ## Ingest alone next to a bare FastAPI endpoint: single posts, batches, 1,000/s paced
	bash deploy/local/kafka.sh resolve
	$(UV) run --frozen python -m bench.ingest

bench-classifier: install ## Classifier on real Kafka next to a pass-through hop, and model comments/s on one core (BENCH_EVENTS)
	bash deploy/local/kafka.sh resolve
	$(UV) run --frozen python -m bench.classifier.bench --events $(BENCH_EVENTS)

eval-sentiment: install ## Default sentiment model vs plain VADER on ../shared/data/sentiment (F1 per set; SET=file adds one)
	$(UV) run --frozen python -m bench.classifier.eval_sentiment $(if $(SET),--set $(SET))

eval-sentiment-ceiling: install ## How far a model trained on each sentiment set itself gets (5-fold, scikit-learn; a few minutes)
	$(UV) run --frozen python -m bench.classifier.ceiling_sentiment

eval-themes: install ## Themes and their clause sentiment on the labeled comments in bench/classifier/data/themes*.tsv
	$(UV) run --frozen python -m bench.classifier.eval_themes

eval-flags: install ## urgent, contains_pii, score_sentiment_mismatch on bench/classifier/data/flags*.tsv
	$(UV) run --frozen python -m bench.classifier.eval_flags

bench-notifier: install ## The notifier's webhooks, call tasks and emails/s next to raw httpx, aiohttp and aiosmtplib
	$(UV) run --frozen python -m bench.notifier

kafka-start: ## Start the local Kafka broker (127.0.0.1:19092); a second start reuses it
	bash deploy/local/kafka.sh start

kafka-stop: ## Stop the local Kafka broker
	bash deploy/local/kafka.sh stop

kafka-status: ## Is the local Kafka broker running?
	bash deploy/local/kafka.sh status

clean: ## Remove .venv, caches and the embedded data in .npsloop and .npsloop-demo (not the Kafka jar cache)
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .npsloop .npsloop-demo $(BOOTSTRAP)
	find src libs schemas services bench deploy tests -name __pycache__ -type d -prune -exec rm -rf {} +

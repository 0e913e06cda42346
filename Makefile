# One way to run each environment with Docker Compose (v2, `docker compose`). See README.md,
# "Running with containers".
#
#   make dev-up        development: hot reload, debug logs, API on 127.0.0.1:8000
#   make staging-up    staging: the production image, API on 127.0.0.1:8080
#   make prod-up       production: nginx on 80/443, persistent database volume
#   make prod-keys ARGS="create --name ops --role officer"   API keys (also list, revoke ID)
#
# Each environment reads .env.<env> (copy .env.<env>.example). Add Prometheus and Grafana with
# COMPOSE_PROFILES=observability (in that file, or on the command line).

GIT_COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
export GIT_COMMIT

COMPOSE_dev     = docker compose --env-file .env.dev -f compose.yaml -f compose.override.yaml
COMPOSE_staging = docker compose --env-file .env.staging -f compose.yaml -f compose.staging.yaml
COMPOSE_prod    = docker compose --env-file .env.prod -f compose.yaml -f compose.prod.yaml

ENVS = dev staging prod
# Development rebuilds at every start (new dependencies); staging and production build the image only
# when it is missing, so that IMAGE/IMAGE_TAG in the env file can name a published one
# (`make <env>-build` rebuilds it).
UP_dev = --build
# Development runs the TypeScript sources; the image runs them compiled.
NODE_dev = node --import tsx
EXT_dev = ts
NODE_staging = node
EXT_staging = js
NODE_prod = node
EXT_prod = js

.PHONY: help $(foreach e,$(ENVS),$(e)-up $(e)-down $(e)-logs $(e)-ps $(e)-build $(e)-migrate $(e)-config $(e)-keys) \
	dev-seed staging-seed
.DEFAULT_GOAL := help

help:
	@echo 'make <env>-up | <env>-down | <env>-logs | <env>-ps | <env>-build | <env>-migrate | <env>-config'
	@echo '     <env>-keys ARGS="create --name NAME --role viewer|clerk|officer|admin" (or "list", "revoke ID")'
	@echo '     with <env> one of: $(ENVS); also dev-seed and staging-seed'

.env.%:
	@echo 'missing $@: cp $@.example $@ and fill it in' >&2; exit 1

define environment
$(1)-up: .env.$(1)
	$$(COMPOSE_$(1)) up $$(UP_$(1)) --detach --wait
$(1)-down: .env.$(1)
	$$(COMPOSE_$(1)) down --remove-orphans
$(1)-logs: .env.$(1)
	$$(COMPOSE_$(1)) logs --follow --tail=200
$(1)-ps: .env.$(1)
	$$(COMPOSE_$(1)) ps --all
$(1)-build: .env.$(1)
	$$(COMPOSE_$(1)) build
$(1)-migrate: .env.$(1)
	$$(COMPOSE_$(1)) run --rm migrate
$(1)-config: .env.$(1)
	$$(COMPOSE_$(1)) config
$(1)-keys: .env.$(1)
	$$(COMPOSE_$(1)) exec api $$(NODE_$(1)) src/cli/keys.$$(EXT_$(1)) $$(ARGS)
endef
$(foreach e,$(ENVS),$(eval $(call environment,$(e))))

# The five original loans. Development seeds them at start already; this also works after a reset.
dev-seed: .env.dev
	$(COMPOSE_dev) run --rm migrate node --import tsx src/cli/seed.ts
staging-seed: .env.staging
	$(COMPOSE_staging) run --rm migrate node src/cli/seed.js

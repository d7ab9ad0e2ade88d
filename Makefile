# One entry point for people and CI alike.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install test lint typecheck pytest browser run clean shipping-tools check-shipping render-deploy image-check soak bench

$(BIN)/.installed: pyproject.toml
	@scripts/install-venv.sh $(VENV) $(PYTHON)
	touch $@

install: $(BIN)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

pytest: install browser
	$(BIN)/pytest

## browser: Debian's chromium for the console's browser tests (apt-get; skipped when /usr/bin/chromium exists)
browser:
	bash scripts/install-browser.sh

shipping-tools: install
	bash scripts/install-shipping-tools.sh

## check-shipping: helm lint, rendered manifests validated for several Kubernetes versions, yamllint, hadolint
check-shipping: shipping-tools
	bash scripts/check-shipping.sh

## render-deploy: regenerate deploy/base from the chart's defaults
render-deploy: shipping-tools
	bash scripts/render-deploy.sh

## image-check: build the image with podman and run it against a local SQS server (needs podman; slow)
image-check: install
	bash scripts/image-check.sh

## test: everything CI checks: lint, types, chart and manifests, the test suite (with the browser tests)
test: lint typecheck check-shipping pytest

## run: the service; with no MQ_QUEUE_URL it starts an embedded local SQS server
run: install
	$(BIN)/mq-service run

BENCH_ARGS ?=

## bench: benchmarks against fauxqs on 127.0.0.1 (needs Node 20 and npm); BENCH_ARGS=--quick for a short run
bench: install
	$(BIN)/pip install --quiet -r bench/requirements.txt
	cd bench/fauxqs && npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python -m bench.run $(BENCH_ARGS)

SOAK_MESSAGES ?= 30000

## soak: SOAK_MESSAGES messages through the whole service on fauxqs (npm-installs bench/fauxqs if needed);
## fails if a message is lost, RSS grows between quartiles, or tasks or sockets leak
soak: install
	$(BIN)/python -m tests.reliability.soak --messages $(SOAK_MESSAGES)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist *.egg-info

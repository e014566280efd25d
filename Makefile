# The two commands of the README: `make run` and `make test`. CI calls `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install run shell test lint typecheck unit bench clean docs image

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/capi dev

# A shell with `capi` on PATH (the venv activated); `exit` leaves it.
shell: install
	@echo "capi is on PATH in this shell; exit to leave"
	@. $(BIN)/activate && exec $${SHELL:-/bin/sh}

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	CAPI_TEST_POSTGRES_URL=$(TEST_DATABASE_URL) $(BIN)/pytest -q

bench: install
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	$(BIN)/python bench/ingest.py --peer --lean
	$(BIN)/python bench/worker.py --peer --lean

# The environment-variable table of docs/operations.md, generated from capi_stream/settings.py.
docs: install
	$(BIN)/python -m capi_stream.settings_doc docs/operations.md

# The one image of every `capi` process; deploy/kustomization.yaml's `images:` names it.
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= capi-stream:$(VERSION)
DOCKER ?= docker

image:
	$(DOCKER) build -t $(IMAGE) .
	@echo "built $(IMAGE); deploy it: (cd deploy && kustomize edit set image capi-stream=$(IMAGE))"

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache

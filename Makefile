# resnet-serving: `make demo` runs the main job, `make test` the default test suite.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: setup test lint demo clean

setup:  ## Python environment and pinned tools (a quick no-op when present)
	@bash hack/setup.sh

lint: setup  ## ruff over the Python code
	.venv/bin/python -m ruff check tooling tests
	.venv/bin/python -m ruff format --check tooling tests

test: setup lint  ## the default suite: lint, chart rendering/validation, tooling tests
	.venv/bin/python -m pytest $(PYTEST_ARGS)

demo: setup  ## the main job (the local rehearsal cluster arrives with issue 4)
	.venv/bin/resnet-serving demo

clean:  ## remove this clone's environment (the per-user cache stays)
	rm -rf .venv .tools

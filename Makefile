# resnet-serving: `make demo` runs the main job, `make test` the default test suite.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: setup setup-rehearsal test lint demo bench clean

setup:  ## Python environment and pinned tools (a quick no-op when present)
	@bash hack/setup.sh

setup-rehearsal: setup  ## also the rehearsal cluster's binaries (Kubernetes, etcd, kwok, metrics-server)
	@bash hack/install-tools.sh --rehearsal

lint: setup  ## ruff over the Python code
	.venv/bin/python -m ruff check tooling tests bench
	.venv/bin/python -m ruff format --check tooling tests bench

test: setup-rehearsal lint  ## the default suite: lint, charts, model, serving, load, rehearsal e2e
	.venv/bin/python -m pytest $(PYTEST_ARGS)

demo: setup-rehearsal  ## the main job: the local rehearsal (fast profile); see `resnet-serving rehearse --help`
	.venv/bin/resnet-serving rehearse

bench: setup  ## P1-P4 (bench/README.md); ratios measured in one run, not tests
	.venv/bin/python bench/serving_ratio.py
	.venv/bin/python bench/locust_capacity.py
	.venv/bin/python bench/fleet_fidelity.py

clean:  ## remove this clone's environment (the per-user cache stays)
	rm -rf .venv .tools

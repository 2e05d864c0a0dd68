# resnet-serving: `make demo` runs the main job, `make test` the default test suite.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: setup setup-demo setup-rehearsal test test-fast check lint demo proof capacity bench clean

setup:  ## Python environment and the chart tools (a quick no-op when present)
	@bash hack/setup.sh

setup-demo:  ## only what `make demo` runs: Python, helm, the rehearsal's binaries, the Cluster Autoscaler
	@bash hack/setup.sh --demo

setup-rehearsal: setup  ## also the rehearsal's binaries, the Cluster Autoscaler, Prometheus and KEDA
	@bash hack/install-tools.sh --rehearsal

.PHONY: setup-node
setup-node: setup-rehearsal  ## also the real node (docs/node.md, as root): containerd, runc, CNI, kubelet, kube-proxy, the local images
	@bash hack/install-node.sh

lint: setup  ## ruff over the Python code
	.venv/bin/python -m ruff check tooling tests bench ct-install
	.venv/bin/python -m ruff format --check tooling tests bench ct-install

.PHONY: docs
docs:  ## the charts' README.md from README.md.gotmpl and values.yaml (helm-docs; `make setup` builds it)
	@bash hack/docs.sh

# Test workers side by side (pytest-xdist): the tests sharing a cluster, the model or a slow
# module's fixture stay on one worker (conftest.py's `worker_group`). 0 runs in one process.
TEST_WORKERS ?= 3
XDIST = $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder)

test: setup-node lint  ## the default suite: lint, charts, model, serving, load, rehearsal e2e, real pods on the node (as root)
	.venv/bin/python -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: setup lint  ## the fast tier: lint and every test not marked slow (no cluster, server, Locust or TensorFlow)
	.venv/bin/python -m pytest -m "not slow" $(XDIST) $(PYTEST_ARGS)

check: test-fast  ## the same as test-fast

demo: setup-demo  ## the main job: the local rehearsal (fast profile); see `resnet-serving rehearse --help`
	.venv/bin/resnet-serving rehearse

# The README's proof: the lab's values, ci/responsive-values.yaml (CPU, scaled sooner and faster)
# and ci/requests-values.yaml (KEDA on TF Serving's request metrics, real Prometheus and KEDA), on
# the lab's step shape and on a spike to 3x one replica's capacity within 10 s (fast profile), and
# the spike once more on the lab profile (nodes boot in about 200 s).
VALUES := charts/resnet-serving/ci
THREE_WAY := --values $(VALUES)/lab-values.yaml --values $(VALUES)/responsive-values.yaml --values $(VALUES)/requests-values.yaml
SPIKE := SPIKE_BASE_USERS=5 SPIKE_USERS=75 SPIKE_START=30 SPIKE_SECONDS=120 SPIKE_TOTAL_SECONDS=200 SPIKE_SPAWN_RATE=10
proof: setup-rehearsal  ## lab vs responsive vs requests values: runs/proof/{step,spike,spike-lab}/tune.md and .png
	.venv/bin/resnet-serving tune $(THREE_WAY) --shape step --report runs/proof/step
	$(SPIKE) .venv/bin/resnet-serving tune $(THREE_WAY) --shape spike --report runs/proof/spike
	$(SPIKE) SPIKE_TOTAL_SECONDS=420 .venv/bin/resnet-serving tune $(THREE_WAY) --shape spike --profile lab --report runs/proof/spike-lab

bench: setup  ## P1-P6 (bench/README.md); ratios measured in one run, not tests
	.venv/bin/python bench/serving_ratio.py
	.venv/bin/python bench/locust_capacity.py
	.venv/bin/python bench/locust_worker_start.py --old-grpc
	.venv/bin/python bench/fleet_fidelity.py
	.venv/bin/python bench/replica_startup.py
	.venv/bin/python bench/concurrency_at_slo.py
	.venv/bin/python bench/serving_soak.py

clean:  ## remove this clone's environment (the per-user cache stays)
	rm -rf .venv .tools

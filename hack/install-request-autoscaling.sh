#!/usr/bin/env bash
# Request-driven autoscaling for the rehearsal: the real Prometheus and the real KEDA (its
# operator and its metrics API server), built from the Go module proxy and cached per pinned
# version, and KEDA's CRDs from its module (source only). When the proxy does not serve one of
# the two modules (and no build of it is cached), nothing is built: one line says what is
# missing and the rehearsal runs without KEDA mode (tooling/rehearsal/keda.py names the missing
# parts). No third-party source is kept in this repository. KEDA is most of the build: both
# commands link every one of its scalers' SDKs (no build tag leaves them out). Build times:
# docs/measurements.md.
set -euo pipefail

# shellcheck source=build-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/build-lib.sh"
# Paths in the binaries relative to their modules (smaller, and no build machine's folders).
export GOFLAGS="$GOFLAGS -trimpath"

# module_dir MODULE@VERSION: the module's source folder from the Go module proxy, or nothing.
module_dir() {
  go mod download -json "$1" 2>/dev/null | sed -n 's/.*"Dir": "\(.*\)",/\1/p'
}

# Prometheus with only the service discovery the rehearsal uses: its plugins/ package imports
# each SD behind `!remove_all_sd || enable_<name>_sd`, so these tags drop the 25 cloud SDs (and
# their SDKs) and keep kubernetes_sd (plus file and http, always in). No `builtinassets` tag:
# the web UI's assets are not in the module (they are built with npm), so / has no UI, and the
# HTTP API (/api/v1/query, /-/ready) works as in a release build.
build_prometheus() {
  local version  # its release number (3.x; the module's versions are v0.3xx.y)
  version="$(cat "$(module_dir "github.com/prometheus/prometheus@$PROMETHEUS_VERSION")/VERSION")"
  GOFLAGS="$GOFLAGS -tags=remove_all_sd,enable_kubernetes_sd" go_install prometheus \
    github.com/prometheus/prometheus/cmd/prometheus "$PROMETHEUS_VERSION" \
    "-s -w -X github.com/prometheus/common/version.Version=$version -X github.com/prometheus/common/version.Branch=HEAD -X github.com/prometheus/common/version.Revision=$PROMETHEUS_VERSION"
}

# KEDA's module has a replace directive (and an exclude), which `go install` refuses: a wrapper
# module copies them and builds both commands in one `go build`, so the packages they share (all
# of KEDA's scalers, client-go, controller-runtime) are compiled once.
build_keda() {
  local gomod replaces="" excludes module
  gomod="$(go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  replaces="$(sed -n 's|^replace \([^ ]*\) \([^ ]*\) => \([^ ]*\) \([^ ]*\)$|\1@\2=\3@\4|p' "$gomod")"
  excludes="$(sed -n 's|^exclude \([^ ]*\) \([^ ]*\)$|\1@\2|p' "$gomod")"
  wrapper keda "github.com/kedacore/keda/v2@$KEDA_VERSION" "$replaces"
  for module in $excludes; do go mod edit -exclude="$module"; done
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "github.com/kedacore/keda/v2/cmd/adapter"\n\t_ "github.com/kedacore/keda/v2/cmd/operator"\n)\n' > tools.go
  tidy_and_build_all \
    "-s -w -X=github.com/kedacore/keda/v2/version.Version=$KEDA_VERSION -X=github.com/kedacore/keda/v2/version.GitCommit=$KEDA_VERSION" \
    github.com/kedacore/keda/v2/cmd/operator github.com/kedacore/keda/v2/cmd/adapter
  mv "$out/operator" "$out/keda-operator" && mv "$out/adapter" "$out/keda-adapter"
  # The CRDs (ScaledObject and the others) the operator serves, from the same module.
  module="$(go list -m -f '{{.Dir}}' github.com/kedacore/keda/v2)"
  mkdir -p "$out/crds" && cp "$module"/config/crd/bases/*.yaml "$out/crds/" && chmod -R u+w "$out/crds"
  cd "$root" && rm -rf "$out/src"
}

# Each is linked from the cache when built before (no source needed), else built where the
# proxy serves its module.
prometheus_cached="$cache/prometheus-$PROMETHEUS_VERSION/prometheus"
keda_cached="$cache/keda-operator-$KEDA_VERSION/keda-operator"
prometheus_module="github.com/prometheus/prometheus@$PROMETHEUS_VERSION"
keda_module="github.com/kedacore/keda/v2@$KEDA_VERSION"
missing=()
[[ -x "$prometheus_cached" || -n "$(module_dir "$prometheus_module")" ]] || missing+=("$prometheus_module")
[[ -x "$keda_cached" || -n "$(module_dir "$keda_module")" ]] || missing+=("$keda_module")
if ((${#missing[@]})); then
  rm -f "$bin/prometheus" "$bin/keda-operator" "$bin/keda-adapter" "$(dirname "$bin")/keda-crds"
  echo "==> request autoscaling: the Go module proxy does not serve ${missing[*]}: the rehearsal" \
    "runs without KEDA mode (autoscaling.requests.keda); run \`make setup-rehearsal\` where it does"
  exit 0
fi

# Two streams, as the control plane's: one build leaves a core idle while it links.
build prometheus "$PROMETHEUS_VERSION" build_prometheus &
pids=($!)
build keda-operator "$KEDA_VERSION" build_keda &
pids+=($!)
wait_all "${pids[@]}"
ln -sfn "$cache/keda-operator-$KEDA_VERSION/keda-adapter" "$bin/keda-adapter"
ln -sfn "$cache/keda-operator-$KEDA_VERSION/crds" "$(dirname "$bin")/keda-crds"

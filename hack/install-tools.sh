#!/usr/bin/env bash
# Builds the pinned CLI tools from the Go module proxy into a per-user cache keyed by version,
# then links them into .tools/bin. A second run with everything present is a quick no-op.
# Independent modules build side by side (go's output in the cache's NAME-VERSION.log).
#   install-tools.sh              the chart tools: helm v4 and v3, kubeconform, ct, helm-docs, kind
#   install-tools.sh --demo       helm v4 and the rehearsal's binaries: what `make demo` runs
#   install-tools.sh --rehearsal  the chart tools, the rehearsal's binaries, Prometheus and KEDA
set -euo pipefail
mode="${1:-}"

# shellcheck source=build-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/build-lib.sh"

# chart-testing's module list is not served, so `go install ct@version` fails on its
# deprecation check; a wrapper module pins the exact version instead.
build_ct() {
  wrapper ct "github.com/helm/chart-testing/v3@$CHART_TESTING_VERSION"
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/helm/chart-testing/v3/ct"\n' > tools.go
  tidy_and_build github.com/helm/chart-testing/v3/ct \
    "-X github.com/helm/chart-testing/v3/ct/cmd.Version=$CHART_TESTING_VERSION"
  # ct's lint configuration (chart_schema.yaml, lintconf.yaml) ships in its module.
  local module
  module="$(go list -m -f '{{.Dir}}' github.com/helm/chart-testing/v3)"
  mkdir -p "$out/etc" && cp "$module"/etc/*.yaml "$out/etc/" && chmod u+w "$out"/etc/*.yaml
  cd "$root" && rm -rf "$out/src"
}

pids=()
build helm "$HELM_VERSION" go_install helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION" \
  "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" &
pids+=($!)
if [[ "$mode" != "--demo" ]]; then
kube_major="${HELM3_KUBE_VERSION%%.*}" kube_minor="${HELM3_KUBE_VERSION#*.}"
helm3_ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM3_VERSION"
for package in pkg/lint/rules pkg/chartutil; do
  helm3_ldflags+=" -X helm.sh/helm/v3/$package.k8sVersionMajor=$kube_major"
  helm3_ldflags+=" -X helm.sh/helm/v3/$package.k8sVersionMinor=$kube_minor"
done
build helm3 "$HELM3_VERSION-k8s$HELM3_KUBE_VERSION" \
  go_install helm3 helm.sh/helm/v3/cmd/helm "$HELM3_VERSION" "$helm3_ldflags" &
pids+=($!)
# The small ones one after the other, beside the two helms.
{
  build kubeconform "$KUBECONFORM_VERSION" go_install kubeconform \
    github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" "-X main.version=$KUBECONFORM_VERSION"
  build ct "$CHART_TESTING_VERSION" build_ct
  # helm-docs writes the charts' README.md from README.md.gotmpl and values.yaml (`make docs`).
  build helm-docs "$HELM_DOCS_VERSION" go_install helm-docs \
    github.com/norwoodj/helm-docs/cmd/helm-docs "$HELM_DOCS_VERSION" "-X main.version=$HELM_DOCS_VERSION"
  # kind, for `--provider kind` on a machine with Docker (its version stamped as its Makefile does).
  build kind "$KIND_VERSION" go_install kind sigs.k8s.io/kind "$KIND_VERSION" \
    "-X sigs.k8s.io/kind/pkg/cmd/kind/version.gitCommit=$KIND_VERSION"
} &
pids+=($!)
fi
# metrics-server's RBAC/APIService/Deployment manifests, from its module (source only, no
# build): kwokctl applies them in the rehearsal, `cluster create --provider kind` on kind.
manifests="$cache/metrics-server-manifests-$METRICS_SERVER_VERSION"
if [[ ! -f "$manifests/kustomization.yaml" ]]; then
  module="$(go mod download -json "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
  rm -rf "$manifests" && cp -r "$module/manifests/base" "$manifests" && chmod -R u+w "$manifests"
fi
ln -sfn "$manifests" "$root/.tools/metrics-server-manifests"
if [[ "$mode" != "--demo" ]]; then
  wait_all "${pids[@]}"
  ln -sfn "$cache/ct-$CHART_TESTING_VERSION/etc" "$root/.tools/ct"
  helm_pids=()
else
  helm_pids=("${pids[@]}")  # helm builds beside the rehearsal's binaries
fi

[[ "$mode" == "--rehearsal" || "$mode" == "--demo" ]] || exit 0

# The control plane: one wrapper module of k8s.io/kubernetes (build-lib.sh).
build_kubernetes() {
  build_kubernetes_commands kube-apiserver kube-controller-manager kube-scheduler kubectl
}

# etcd's own main package sits in a module with replace directives; call its entry point.
build_etcd() {
  wrapper etcd "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > main.go
  tidy_and_build . "-s -w" etcd
  cd "$root" && rm -rf "$out/src"
}

# kwok and kwokctl, and kwok's default node/pod Stages (from its module), which the rehearsal
# passes back to kwokctl with a pod start delay added.
build_kwok() {
  GOBIN="$out" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
    "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  local module stage
  module="$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
  mkdir -p "$out/stages"
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
      pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    cp "$module/kustomize/stage/$stage.yaml" "$out/stages/"
  done
  chmod -R u+w "$out/stages"
}

# metrics-server (its RBAC/APIService manifests come from its module, above).
build_metrics_server() {
  go_install metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server \
    "$METRICS_SERVER_VERSION" "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
}

# Five modules, each with its own Kubernetes libraries' versions, so they share little compiled
# work (one module for all would move Kubernetes' own pins: etcd and kwok raise its grpc, otel,
# x/net): Kubernetes, the longest, builds beside the other four, which go one after the other.
# A lone build leaves a core idle while it downloads modules or links; two streams fill it.
build kube-apiserver "$KUBERNETES_VERSION" build_kubernetes &
pids=($!)
{
  build etcd "$ETCD_VERSION" build_etcd
  build kwok "$KWOK_VERSION" build_kwok
  build metrics-server "$METRICS_SERVER_VERSION" build_metrics_server
  # The Cluster Autoscaler, where its source can be had (else the rehearsal's stand-in).
  bash "$root/hack/install-cluster-autoscaler.sh"
  # Prometheus and KEDA for the request-driven autoscaling mode (where the proxy serves them);
  # `make demo` runs the lab's CPU signal and needs neither.
  [[ "$mode" == "--demo" ]] || bash "$root/hack/install-request-autoscaling.sh"
} &
pids+=($!)
wait_all "${pids[@]}" "${helm_pids[@]}"
for command in kube-controller-manager kube-scheduler kubectl; do
  ln -sfn "$cache/kube-apiserver-$KUBERNETES_VERSION/$command" "$bin/$command"
done
ln -sfn "$cache/kwok-$KWOK_VERSION/kwokctl" "$bin/kwokctl"
ln -sfn "$cache/kwok-$KWOK_VERSION/stages" "$root/.tools/kwok-stages"

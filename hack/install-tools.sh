#!/usr/bin/env bash
# Builds the pinned CLI tools from the Go module proxy into a per-user cache keyed by version,
# then links them into .tools/bin. A second run with everything present is a quick no-op.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.env
source "$root/hack/versions.env"

cache="${RESNET_SERVING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/resnet-serving}/tools"
bin="$root/.tools/bin"
mkdir -p "$cache" "$bin"
export CGO_ENABLED=0

# build NAME VERSION COMMAND...: runs COMMAND with $out set to an empty folder, once per version.
build() {
  local name="$1" version="$2"
  shift 2
  local dir="$cache/$name-$version"
  if [[ ! -x "$dir/$name" ]]; then
    local started=$SECONDS
    echo "==> building $name $version"
    rm -rf "$dir.partial" && mkdir -p "$dir.partial"
    out="$dir.partial" "$@"
    rm -rf "$dir" && mv "$dir.partial" "$dir"
    echo "    built $name $version in $((SECONDS - started)) s"
  fi
  ln -sfn "$dir/$name" "$bin/$name"
}

# go_install NAME PACKAGE VERSION LDFLAGS: `go install PACKAGE@VERSION`, binary renamed to NAME.
go_install() {
  local name="$1" package="$2" version="$3" ldflags="$4"
  GOBIN="$out" go install -ldflags "$ldflags" "$package@$version"
  mv "$out/$(basename "$package")" "$out/$name.tmp" && mv "$out/$name.tmp" "$out/$name"
}

# wrapper NAME MODULE@VERSION [REPLACES]: a throwaway module in $out/src that requires
# MODULE@VERSION (with optional `old=new@version` replaces), for tools `go install` can't take.
wrapper() {
  local name="$1" requirement="$2" replaces="${3:-}"
  mkdir -p "$out/src" && cd "$out/src"
  go mod init "resnet-serving-tools/$name" >/dev/null 2>&1
  go mod edit -require="$requirement"
  local replace
  for replace in $replaces; do go mod edit -replace="$replace"; done
}

# tidy_and_build PACKAGE LDFLAGS [OUTPUT]: resolves the wrapper's graph, builds PACKAGE.
tidy_and_build() {
  local package="$1" ldflags="$2" output="${3:-$(basename "$1")}"
  go mod tidy >/dev/null 2>&1 || go mod tidy
  go build -o "$out/$output" -ldflags "$ldflags" "$package"
}

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

build helm "$HELM_VERSION" go_install helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION" \
  "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
kube_major="${HELM3_KUBE_VERSION%%.*}" kube_minor="${HELM3_KUBE_VERSION#*.}"
helm3_ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM3_VERSION"
for package in pkg/lint/rules pkg/chartutil; do
  helm3_ldflags+=" -X helm.sh/helm/v3/$package.k8sVersionMajor=$kube_major"
  helm3_ldflags+=" -X helm.sh/helm/v3/$package.k8sVersionMinor=$kube_minor"
done
build helm3 "$HELM3_VERSION-k8s$HELM3_KUBE_VERSION" \
  go_install helm3 helm.sh/helm/v3/cmd/helm "$HELM3_VERSION" "$helm3_ldflags"
build kubeconform "$KUBECONFORM_VERSION" go_install kubeconform \
  github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" "-X main.version=$KUBECONFORM_VERSION"
build ct "$CHART_TESTING_VERSION" build_ct
ln -sfn "$cache/ct-$CHART_TESTING_VERSION/etc" "$root/.tools/ct"
# kind, for `--provider kind` on a machine with Docker (its version stamped as its Makefile does).
build kind "$KIND_VERSION" go_install kind sigs.k8s.io/kind "$KIND_VERSION" \
  "-X sigs.k8s.io/kind/pkg/cmd/kind/version.gitCommit=$KIND_VERSION"
# metrics-server's RBAC/APIService/Deployment manifests, from its module (source only, no
# build): kwokctl applies them in the rehearsal, `cluster create --provider kind` on kind.
manifests="$cache/metrics-server-manifests-$METRICS_SERVER_VERSION"
if [[ ! -f "$manifests/kustomization.yaml" ]]; then
  module="$(go mod download -json "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
  rm -rf "$manifests" && cp -r "$module/manifests/base" "$manifests" && chmod -R u+w "$manifests"
fi
ln -sfn "$manifests" "$root/.tools/metrics-server-manifests"

[[ "${1:-}" == "--rehearsal" ]] || exit 0

# k8s.io/kubernetes replaces its staging modules with ./staging paths; pin each to the
# published v0.X.Y of the same release instead, and stamp the version as its Makefile does.
build_kubernetes() {
  local staging="v0.${KUBERNETES_VERSION#v1.}" gomod replaces="" module
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  for module in $(sed -n 's|^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\1|p' "$gomod"); do
    replaces+=" $module=$module@$staging"
  done
  wrapper kubernetes "k8s.io/kubernetes@$KUBERNETES_VERSION" "$replaces"
  local minor="${KUBERNETES_VERSION#v1.}" && minor="${minor%%.*}"
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
  printf '//go:build tools\n\npackage tools\n\nimport (\n' > tools.go
  local command
  for command in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$command" >> tools.go
  done
  printf ')\n' >> tools.go
  for command in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    echo "    $command …"
    tidy_and_build "k8s.io/kubernetes/cmd/$command" "$ldflags"
  done
  cd "$root" && rm -rf "$out/src"
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

build kube-apiserver "$KUBERNETES_VERSION" build_kubernetes
for command in kube-controller-manager kube-scheduler kubectl; do
  ln -sfn "$cache/kube-apiserver-$KUBERNETES_VERSION/$command" "$bin/$command"
done
build etcd "$ETCD_VERSION" build_etcd
build kwok "$KWOK_VERSION" build_kwok
ln -sfn "$cache/kwok-$KWOK_VERSION/kwokctl" "$bin/kwokctl"
ln -sfn "$cache/kwok-$KWOK_VERSION/stages" "$root/.tools/kwok-stages"
# metrics-server, and its RBAC/APIService manifests (from its module) for kwokctl to apply.
build_metrics_server() {
  go_install metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server \
    "$METRICS_SERVER_VERSION" "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
}
build metrics-server "$METRICS_SERVER_VERSION" build_metrics_server

# The Cluster Autoscaler (its kwok cloud provider) for the rehearsal's node pool. Its sources come
# from the Go module proxy where it serves them, else from two git repositories on disk (bare
# clones work: read with `git archive`); with neither, nothing is built and the rehearsal uses
# its stand-in. No third-party source is kept in this repository.
CA_GIT_VARIABLE=RESNET_SERVING_CLUSTER_AUTOSCALER_GIT  # kubernetes-sigs/cluster-autoscaler
AUTOSCALER_GIT_VARIABLE=RESNET_SERVING_AUTOSCALER_GIT  # kubernetes/autoscaler (for ./cluster-autoscaler/apis)

# module_dir MODULE@VERSION: the module's source folder from the Go module proxy, or nothing.
module_dir() {
  go mod download -json "$1" 2>/dev/null | sed -n 's/.*"Dir": "\(.*\)",/\1/p'
}

# cluster_autoscaler_sources DEST: DEST/cluster-autoscaler and DEST/apis, or returns 1.
cluster_autoscaler_sources() {
  local dest="$1" ca_dir apis_dir
  local ca_git="${!CA_GIT_VARIABLE:-}" autoscaler_git="${!AUTOSCALER_GIT_VARIABLE:-}"
  mkdir -p "$dest/cluster-autoscaler" "$dest/apis"
  ca_dir="$(module_dir "sigs.k8s.io/cluster-autoscaler@$CLUSTER_AUTOSCALER_MODULE_VERSION")"
  apis_dir="$(module_dir "k8s.io/autoscaler/cluster-autoscaler/apis@$AUTOSCALER_APIS_MODULE_VERSION")"
  if [[ -n "$ca_dir" && -n "$apis_dir" ]]; then
    echo "==> cluster-autoscaler sources: the Go module proxy"
    cp -r "$ca_dir/." "$dest/cluster-autoscaler" && cp -r "$apis_dir/." "$dest/apis"
  elif [[ -n "$ca_git" && -n "$autoscaler_git" ]] \
    && git -C "$ca_git" cat-file -e "$CLUSTER_AUTOSCALER_COMMIT^{commit}" 2>/dev/null \
    && git -C "$autoscaler_git" cat-file -e "$AUTOSCALER_COMMIT^{commit}" 2>/dev/null; then
    echo "==> cluster-autoscaler sources: git archive of $ca_git and $autoscaler_git"
    git -C "$ca_git" archive "$CLUSTER_AUTOSCALER_COMMIT" | tar -x -C "$dest/cluster-autoscaler"
    git -C "$autoscaler_git" archive "$AUTOSCALER_COMMIT" cluster-autoscaler/apis \
      | tar -x -C "$dest/apis" --strip-components=2
  else
    return 1
  fi
  chmod -R u+w "$dest"
}

# Builds ./kwok of the sources in $out/src with the apis module beside it and the release
# candidates pinned to the release.
build_cluster_autoscaler() {
  local kube="$CLUSTER_AUTOSCALER_KUBE_VERSION" minor
  minor="${kube#v1.}" && minor="${minor%%.*}"
  cd "$out/src/cluster-autoscaler"
  go mod edit -replace "k8s.io/autoscaler/cluster-autoscaler/apis=$out/src/apis"
  sed -i -E "s/ v0\.$minor\.0-rc\.[0-9]+/ v0.${kube#v1.}/g; s/ v1\.$minor\.0-rc\.[0-9]+/ $kube/g" go.mod
  tidy_and_build ./kwok \
    "-s -w -X sigs.k8s.io/cluster-autoscaler/pkg/version.ClusterAutoscalerVersion=${CLUSTER_AUTOSCALER_COMMIT:0:12}" \
    cluster-autoscaler
  cd "$root" && rm -rf "$out/src"
}

ca_version="${CLUSTER_AUTOSCALER_COMMIT:0:12}"
ca_cached="$cache/cluster-autoscaler-$ca_version/cluster-autoscaler"
ca_sources="$cache/cluster-autoscaler-sources.partial"
rm -rf "$ca_sources"
if [[ -x "$ca_cached" ]] || cluster_autoscaler_sources "$ca_sources"; then
  fetch_sources() { mkdir -p "$out" && mv "$ca_sources" "$out/src" && build_cluster_autoscaler; }
  build cluster-autoscaler "$ca_version" fetch_sources
else
  rm -rf "$ca_sources" "$bin/cluster-autoscaler"
  echo "==> cluster-autoscaler: no source (the module proxy refuses it, $CA_GIT_VARIABLE and" \
    "$AUTOSCALER_GIT_VARIABLE unset): the rehearsal will use its stand-in node-group controller;" \
    "set both to git clones of kubernetes-sigs/cluster-autoscaler and kubernetes/autoscaler and" \
    "run \`make setup-rehearsal\` for the real one"
fi

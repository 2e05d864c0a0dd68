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

# chart-testing's module list is not served (so `go install ct@version` fails on its
# deprecation check); hack/tools/ct pins the exact version in a small wrapper module instead.
build_ct() {
  (cd "$root/hack/tools/ct" && go build -o "$out/ct" \
    -ldflags "-X github.com/helm/chart-testing/v3/ct/cmd.Version=$CHART_TESTING_VERSION" \
    github.com/helm/chart-testing/v3/ct)
  # ct's lint configuration (chart_schema.yaml, lintconf.yaml) ships in its module.
  local module
  module="$(cd "$root/hack/tools/ct" && go list -m -f '{{.Dir}}' github.com/helm/chart-testing/v3)"
  mkdir -p "$out/etc" && cp "$module"/etc/*.yaml "$out/etc/" && chmod u+w "$out"/etc/*.yaml
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

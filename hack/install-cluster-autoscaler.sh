#!/usr/bin/env bash
# The Cluster Autoscaler (its kwok cloud provider) for the rehearsal's node pool. Its sources come
# from the Go module proxy where it serves them, else from two git repositories on disk (bare
# clones work: read with `git archive`); with neither, nothing is built and the rehearsal uses
# its stand-in. The binary is cached per pinned commit. No third-party source is kept in this
# repository.
set -euo pipefail

# shellcheck source=build-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/build-lib.sh"
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

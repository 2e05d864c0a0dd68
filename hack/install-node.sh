#!/usr/bin/env bash
# The real node's pieces (`make setup-node`, docs/node.md): Debian's iptables, conntrack,
# mmdebstrap, umoci and libseccomp; containerd v2, runc, the CNI plugins, CoreDNS, the kubelet
# and kube-proxy built from the Go module proxy at the versions pinned in hack/versions.env into
# the per-user cache (build-lib.sh), linked into .tools/bin; then the local images (hack/images/),
# each an OCI archive cached by the hash of its inputs. A second run with everything present is
# a quick no-op. Needs root (apt-get, and containerd runs as root).
set -euo pipefail

# shellcheck source=build-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/build-lib.sh"

# Debian packages: the node's netfilter tools, the images' root filesystems (mmdebstrap, umoci
# unused by the packer but kept for inspecting archives) and runc's seccomp library.
debian_packages=(iptables conntrack mmdebstrap umoci libseccomp-dev)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  if ((EUID != 0)); then
    echo "setup-node: Debian packages missing (${missing[*]}): run as root, or apt-get install them" >&2
    exit 1
  fi
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# containerd, ctr and the runc shim: one `go install` (no replace directives in its go.mod);
# CGO off leaves out the btrfs snapshotter, which this node does not use.
build_containerd() {
  local package="github.com/containerd/containerd/v2/cmd" ldflags="-s -w"
  ldflags+=" -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION"
  GOBIN="$out" go install -ldflags "$ldflags" \
    "$package/containerd@$CONTAINERD_VERSION" "$package/ctr@$CONTAINERD_VERSION" \
    "$package/containerd-shim-runc-v2@$CONTAINERD_VERSION"
}

# runc needs cgo (its nsenter is C) and links Debian's libseccomp. Its Makefile's third default
# tag, libpathrs, needs a Rust library Debian does not package; without it runc uses its Go path
# resolution, as before 1.5.
build_runc() {
  CGO_ENABLED=1 GOBIN="$out" go install -tags "seccomp urfave_cli_no_docs" \
    -ldflags "-s -w -X main.version=${RUNC_VERSION#v}" "github.com/opencontainers/runc@$RUNC_VERSION"
}

# The CNI plugins the node's network needs: a bridge with host-local addresses, loopback, and
# portmap for hostPort.
build_cni_plugins() {
  local plugins="github.com/containernetworking/plugins/plugins" ldflags="-s -w"
  ldflags+=" -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION"
  GOBIN="$out" go install -ldflags "$ldflags" "$plugins/main/bridge@$CNI_PLUGINS_VERSION" \
    "$plugins/ipam/host-local@$CNI_PLUGINS_VERSION" "$plugins/main/loopback@$CNI_PLUGINS_VERSION" \
    "$plugins/meta/portmap@$CNI_PLUGINS_VERSION"
}

# CoreDNS, the cluster DNS (tooling/node/cluster_dns.py): one `go install` of its main module
# (its go.mod has no replace directives), with every in-tree plugin, as upstream builds it.
build_coredns() {
  GOBIN="$out" go install -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
    "github.com/coredns/coredns@$COREDNS_VERSION"
}

# The kubelet and kube-proxy in the same wrapper module as the control plane (build-lib.sh),
# so the go build cache already holds most of their packages.
build_kubelet() { build_kubernetes_commands kubelet kube-proxy; }

# The kubelet, the longest, beside the rest, which go one after the other.
build kubelet "$KUBERNETES_VERSION" build_kubelet &
pids=($!)
{
  build containerd "$CONTAINERD_VERSION" build_containerd
  build runc "$RUNC_VERSION" build_runc
  build bridge "$CNI_PLUGINS_VERSION" build_cni_plugins
  build coredns "$COREDNS_VERSION" build_coredns
} &
pids+=($!)
wait_all "${pids[@]}"
ln -sfn "$cache/kubelet-$KUBERNETES_VERSION/kube-proxy" "$bin/kube-proxy"
for command in ctr containerd-shim-runc-v2; do
  ln -sfn "$cache/containerd-$CONTAINERD_VERSION/$command" "$bin/$command"
done
# The CNI plugins stay in their own folder (the kubelet's and containerd's CNI bin dir).
ln -sfn "$cache/bridge-$CNI_PLUGINS_VERSION" "$root/.tools/cni-bin"
rm -f "$bin/bridge"

[[ "${1:-}" == "--no-images" ]] || bash "$root/hack/images/build-images.sh"

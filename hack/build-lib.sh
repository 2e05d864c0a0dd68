# Shared by the install scripts (sourced): the per-user cache of built tools, the folder they are
# linked into, and the helpers that build a tool once per pinned version.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.env
source "$root/hack/versions.env"

cache="${RESNET_SERVING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/resnet-serving}/tools"
bin="${RESNET_SERVING_TOOLS:-$root/.tools/bin}"  # RESNET_SERVING_TOOLS: as tooling/paths.py
mkdir -p "$cache" "$bin"
export CGO_ENABLED=0
# The tools are for running, not debugging: the compiler writes no DWARF (12-14 % less compile
# CPU measured on etcd and helm-docs; the -s -w links drop it anyway). A caller's -gcflags wins.
[[ " ${GOFLAGS:-} " == *" -gcflags="* ]] || export GOFLAGS="${GOFLAGS:+$GOFLAGS }-gcflags=all=-dwarf=false"

# build NAME VERSION COMMAND...: runs COMMAND with $out set to an empty folder, once per version;
# its output (go's downloads and errors) goes to $cache/NAME-VERSION.log, whose end is shown if
# it fails. Safe to run side by side with other builds (`build … &`, then `wait_all`), and with
# another setup building the same version: the second waits for the first (a lock per version)
# and then links what it built, where both used to empty each other's $dir.partial.
build() {
  local name="$1" version="$2"
  shift 2
  local dir="$cache/$name-$version" lock
  if [[ ! -x "$dir/$name" ]]; then
    exec {lock}>"$dir.lock"
    if ! flock --nonblock "$lock"; then
      echo "==> waiting for another setup's build of $name $version"
      flock "$lock"
    fi
    build_unlocked "$name" "$version" "$dir" "$@"
    local status=$?
    exec {lock}>&-
    [[ $status -eq 0 ]] || return "$status"
  fi
  ln -sfn "$dir/$name" "$bin/$name"
}

# build_unlocked NAME VERSION DIR COMMAND...: build's work, under its lock; nothing to do when
# the setup that held the lock before built it.
build_unlocked() {
  local name="$1" version="$2" dir="$3"
  shift 3
  if [[ ! -x "$dir/$name" ]]; then
    local started=$SECONDS log="$dir.log"
    echo "==> building $name $version (output: $log)"
    rm -rf "$dir.partial" && mkdir -p "$dir.partial"
    (out="$dir.partial" "$@") >"$log" 2>&1 &  # errexit holds in it (an `if` would disable it)
    if ! wait $!; then
      echo "    building $name $version failed; the end of $log:" >&2
      tail -n 25 "$log" >&2
      rm -rf "$dir.partial"
      return 1
    fi
    rm -rf "$dir" && mv "$dir.partial" "$dir"
    echo "    built $name $version in $((SECONDS - started)) s"
  fi
}

# wait_all PID...: waits for every background build; fails if any did (each says why itself).
wait_all() {
  local pid failed=0
  for pid in "$@"; do wait "$pid" || failed=1; done
  return "$failed"
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

# tidy_and_build_all LDFLAGS PACKAGE...: one graph resolution and one `go build` for several
# commands of the wrapper's module, each binary named after its package: the packages they
# share are compiled once and the links overlap the compiles.
tidy_and_build_all() {
  local ldflags="$1"
  shift
  go mod tidy >/dev/null 2>&1 || go mod tidy
  go build -o "$out/" -ldflags "$ldflags" "$@"
}

# build_kubernetes_commands CMD...: k8s.io/kubernetes's cmd/CMD binaries into $out, from one
# wrapper module (shared by the control plane and the node, so go's build cache serves both).
# k8s.io/kubernetes replaces its staging modules with ./staging paths; each is pinned to the
# published v0.X.Y of the same release instead, and the version stamped as its Makefile does.
build_kubernetes_commands() {
  local staging="v0.${KUBERNETES_VERSION#v1.}" gomod replaces="" module command
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  for module in $(sed -n 's|^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\1|p' "$gomod"); do
    replaces+=" $module=$module@$staging"
  done
  wrapper kubernetes "k8s.io/kubernetes@$KUBERNETES_VERSION" "$replaces"
  local minor="${KUBERNETES_VERSION#v1.}" && minor="${minor%%.*}"
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
  local packages=()
  printf '//go:build tools\n\npackage tools\n\nimport (\n' > tools.go
  for command in "$@"; do
    printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$command" >> tools.go
    packages+=("k8s.io/kubernetes/cmd/$command")
  done
  printf ')\n' >> tools.go
  tidy_and_build_all "$ldflags" "${packages[@]}"
  cd "$root" && rm -rf "$out/src"
}

# Shared by the install scripts (sourced): the per-user cache of built tools, the folder they are
# linked into, and the helpers that build a tool once per pinned version.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.env
source "$root/hack/versions.env"

cache="${RESNET_SERVING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/resnet-serving}/tools"
bin="${RESNET_SERVING_TOOLS:-$root/.tools/bin}"  # RESNET_SERVING_TOOLS: as tooling/paths.py
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

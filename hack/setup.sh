#!/usr/bin/env bash
# `make setup`: the Python environment and the pinned CLI tools, on a fresh machine or clone
# (`--demo`: only the tools `make demo` runs, hack/install-tools.sh).
#
# The dependencies live in a per-user cached virtualenv keyed by the hash of pyproject.toml
# (built once, reused by every clone, CI's included); each clone's .venv is a thin venv that
# adds that cached site-packages and installs this project editable on top (a few seconds).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# The interpreter outside any .venv (make puts tools on PATH; a stale .venv must not be used).
python="${PYTHON:-$(PATH="$(tr ':' '\n' <<<"$PATH" | grep -vxF "$root/.venv/bin" | paste -sd:)" command -v python3)}"
cache="${RESNET_SERVING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/resnet-serving}"
# Keyed by the declared dependencies (not the rest of pyproject.toml) and the Python version.
key="$("$python" - <<'PY'
import hashlib, sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
declared = repr((project["dependencies"], project.get("optional-dependencies", {})))
setup = open("hack/setup.sh", "rb").read()
digest = hashlib.sha256(declared.encode() + setup).hexdigest()[:16]
print(f"{digest}-py{sys.version_info[0]}{sys.version_info[1]}")
PY
)"
base="$cache/venv-$key"

if [[ ! -f "$base/.complete" ]]; then
  started=$SECONDS
  echo "==> creating the dependency environment $base (once per pyproject.toml change)"
  rm -rf "$base"
  "$python" -m venv "$base"
  "$base/bin/pip" install --quiet --upgrade "pip>=24" "setuptools>=77" wheel
  "$base/bin/pip" install --quiet --progress-bar off ".[model,test]"
  # Without --no-deps it pulls the full tensorflow package over tensorflow-cpu.
  "$base/bin/pip" install --quiet --no-deps "tensorflow-serving-api>=2.21,<2.22"
  "$base/bin/pip" uninstall --quiet --yes resnet-serving
  touch "$base/.complete"
  # Older dependency environments of this project (other pyproject.toml versions) go.
  find "$cache" -maxdepth 1 -name 'venv-*' -type d ! -path "$base" -mtime +7 -exec rm -rf {} +
  echo "    done in $((SECONDS - started)) s"
fi

if [[ ! -f .venv/.base-$key ]]; then
  echo "==> creating .venv on top of $base"
  rm -rf .venv
  "$python" -m venv --without-pip .venv
  site="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  base_site="$("$base/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "import site; site.addsitedir('$base_site')" > "$site/_resnet_serving_deps.pth"
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation --editable .
  touch ".venv/.base-$key"
fi

# The dependencies' commands (pytest, locust, saved_model_cli …) in .venv/bin too, run by .venv's
# interpreter (which sees this project), so an activated .venv gets the project's own tools.
for script in "$base"/bin/*; do
  name="$(basename "$script")"
  [[ -f "$script" && ! -e ".venv/bin/$name" ]] || continue
  head -n1 "$script" | grep -qE "^#!$base/bin/python[0-9.]*$" || continue  # pip's launchers only
  { echo "#!$root/.venv/bin/python"; tail -n +2 "$script"; } > ".venv/bin/$name"
  chmod +x ".venv/bin/$name"
done

bash hack/install-tools.sh "$@"  # --demo: only what `make demo` runs
# Python CLIs that chart-testing calls, next to the Go tools.
for tool in yamllint yamale; do ln -sfn "$base/bin/$tool" .tools/bin/$tool; done
echo "setup complete: .venv (Python), .tools/bin ($(ls .tools/bin | tr '\n' ' '))"

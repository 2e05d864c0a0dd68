#!/usr/bin/env bash
# The real node's local images (`make setup-node`; docs/node.md). There is no registry here, so
# each is built on this machine: a root filesystem from Debian's packages (mmdebstrap, the
# host's apt sources and release), Python wheels from PyPI at the versions .venv has, packed as
# an OCI archive by tooling/node/oci_image.py, for `ctr -n k8s.io images import`. Each archive
# is cached as $cache/images/NAME-HASH.tar, HASH over its inputs (this script, its folder here,
# the packer, the apt sources, the pins, the wheels' versions), and linked as
# .tools/images/NAME.tar; .tools/images/NAME.ref holds the image's name. Needs root.
# Arguments: the images to build (pause fetcher locust tfserving-stand-in), all if none.
set -euo pipefail
wanted=" $* "

# shellcheck source=../build-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../build-lib.sh"
here="$root/hack/images"
images="$cache/images"
links="$root/.tools/images"
python="$root/.venv/bin/python"
mkdir -p "$images" "$links"
[[ -x "$python" ]] || { echo "build-images: $python missing: run \`make setup\` first" >&2; exit 1; }
# shellcheck source=/dev/null
suite="$(. /etc/os-release && echo "$VERSION_CODENAME")"
mapfile -t apt_sources < <(ls /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
  /etc/apt/sources.list.d/*.sources 2>/dev/null | while read -r f; do [[ -s "$f" ]] && echo "$f"; done)
((${#apt_sources[@]})) || { echo "build-images: no apt sources in /etc/apt" >&2; exit 1; }

# input_hash FILE... -- EXTRA...: 16 hex digits over the files' contents and the extra words.
input_hash() {
  local files=() extra=()
  while (($#)) && [[ "$1" != "--" ]]; do files+=("$1"); shift; done
  (($#)) && shift && extra=("$@")
  {
    # contents only: the clone's path is no input (a clone elsewhere reuses the images)
    sha256sum "${files[@]}" "${apt_sources[@]}" "$BASH_SOURCE" "$root/tooling/node/oci_image.py" \
      | cut -d' ' -f1
    printf '%s\n' "$suite" "${extra[@]}"
  } | sha256sum | cut -c1-16
}

# image NAME REF HASH COMMAND...: COMMAND writes $archive (the OCI archive of image REF) unless
# the archive for HASH is there; then links it.
image() {
  local name="$1" ref="$2" hash="$3"
  shift 3
  [[ "$wanted" == "  " || "$wanted" == *" $name "* ]] || return 0
  local archive="$images/$name-$hash.tar"
  if [[ ! -f "$archive" ]]; then
    local started=$SECONDS log="$images/$name-$hash.log"
    echo "==> building image $ref (output: $log)"
    work="$(mktemp -d "$images/.$name.XXXX")"
    if ! (cd "$root" && archive="$archive.partial" "$@") >"$log" 2>&1; then
      echo "    building image $ref failed; the end of $log:" >&2
      tail -n 25 "$log" >&2
      rm -rf "$work" "$archive.partial"
      return 1
    fi
    rm -rf "$work" && mv "$archive.partial" "$archive"
    echo "    built image $ref in $((SECONDS - started)) s ($(du -h "$archive" | cut -f1))"
  fi
  ln -sfn "$archive" "$links/$name.tar"
  echo "$ref" >"$links/$name.ref"
  # Older builds of this image (other inputs) go.
  find "$images" -maxdepth 1 -name "$name-*" ! -name "$name-$hash.*" -delete
}

pack() {  # pack ROOTFS ARGS...: the packer, run by .venv's interpreter
  "$python" -m tooling.node.oci_image "$@"
}

debian_rootfs() {  # debian_rootfs OUT.tar MMDEBSTRAP-ARGS...: a root filesystem tar
  local out="$1"
  shift
  mmdebstrap --quiet --mode=root --format=tar "$@" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*' \
    "$suite" "$out" "${apt_sources[@]}"
}

# wheels DIR REQUIREMENT...: the wheels for REQUIREMENTs (and pip's own) from PyPI, at the
# versions .venv has (its freeze as constraints), for Debian's Python (same minor as .venv's).
wheels() {
  local dir="$1"
  shift
  "$python" -m pip freeze --exclude-editable >"$work/constraints.txt"
  "$python" -m pip download --quiet --only-binary=:all: -d "$dir" -c "$work/constraints.txt" pip "$@"
}

# pip_install_hook PIP-ARGS...: a customize hook that runs pip from its own wheel in the chroot.
pip_install_hook() {
  printf '%s' "chroot \"\$1\" python3 /tmp/wheels/$(cd "$work/wheels" && ls pip-*.whl)/pip install --quiet --no-index --find-links /tmp/wheels --break-system-packages --root-user-action=ignore $*"
}

# pause: the sandbox image and the overprovisioning placeholders' (hack/images/pause/pause.go).
pause_version=3.10
build_pause() {
  mkdir -p "$work/rootfs"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$pause_version" \
    -o "$work/rootfs/pause" "$here/pause/pause.go"
  pack "$work/rootfs" "$archive" --name "resnet-serving/pause:$pause_version" --entrypoint '["/pause"]' \
    --user 65535:65535
}
image pause "resnet-serving/pause:$pause_version" \
  "$(input_hash "$here/pause/pause.go" -- "$pause_version" "$(go version)")" build_pause

# fetcher: sh, curl and tar (busybox and curl from Debian), USER curl_user, as the chart's
# fetch-model.sh expects of curlimages/curl (https and existing-claim paths).
fetcher_packages=busybox,curl,ca-certificates
build_fetcher() {
  debian_rootfs "$work/rootfs.tar" --variant=extract --include="$fetcher_packages" \
    --extract-hook="sh $here/fetcher/customize.sh \"\$1\""
  pack "$work/rootfs.tar" "$archive" --name "resnet-serving/fetcher:$suite" \
    --entrypoint '["/usr/bin/curl"]' --cmd '["--help"]' --user curl_user --workdir /home/curl_user
}
image fetcher "resnet-serving/fetcher:$suite" \
  "$(input_hash "$here/fetcher/customize.sh" -- "$fetcher_packages")" build_fetcher

# Locust: the chart's appVersion (the project's pin) and grpcio, ENTRYPOINT locust, USER locust
# (uid 1000), WORKDIR /home/locust, as locustio/locust; `python` too (the chart's headless
# master saves its HTML report with it, as locustio/locust's python base image has it).
locust_version="$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$root/charts/locust/Chart.yaml")"
locust_requirements="locust==$locust_version grpcio"
build_locust() {
  wheels "$work/wheels" $locust_requirements
  debian_rootfs "$work/rootfs.tar" --variant=minbase --include=python3,python-is-python3 \
    --customize-hook="copy-in $work/wheels /tmp" \
    --customize-hook="$(pip_install_hook $locust_requirements)" \
    --customize-hook='rm -rf "$1"/tmp/wheels' \
    --customize-hook='chroot "$1" useradd --uid 1000 --user-group --create-home --shell /bin/sh locust'
  pack "$work/rootfs.tar" "$archive" --name "resnet-serving/locust:$locust_version" \
    --entrypoint '["locust"]' --user locust --workdir /home/locust --env PYTHONUNBUFFERED=1
}
image locust "resnet-serving/locust:$locust_version" \
  "$(input_hash -- "$locust_requirements" "$("$python" -m pip freeze --exclude-editable | sha256sum)")" build_locust

# The model server: the project's serve-local with tensorflow-cpu behind
# /usr/bin/tensorflow_model_server (TF Serving's flags unchanged). It stands in for
# tensorflow/serving at the chart's appVersion; its name says so.
tfserving_version="$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$root/charts/resnet-serving/Chart.yaml")"
build_tfserving() {
  "$python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$work/wheels" "$root" >/dev/null
  local project
  project="$(cd "$work/wheels" && ls resnet_serving-*.whl)"
  wheels "$work/wheels" "$work/wheels/$project[model]"
  "$python" -m pip download --quiet --only-binary=:all: --no-deps -d "$work/wheels" \
    -c "$work/constraints.txt" tensorflow-serving-api
  debian_rootfs "$work/rootfs.tar" --variant=minbase --include=python3,python-is-python3 \
    --customize-hook="copy-in $work/wheels /tmp" \
    --customize-hook="$(pip_install_hook "'/tmp/wheels/$project[model]'")" \
    --customize-hook="$(pip_install_hook --no-deps tensorflow-serving-api)" \
    --customize-hook='rm -rf "$1"/tmp/wheels' \
    --customize-hook="upload $here/tfserving-stand-in/tensorflow_model_server /usr/bin/tensorflow_model_server" \
    --customize-hook='chmod 0755 "$1"/usr/bin/tensorflow_model_server'
  pack "$work/rootfs.tar" "$archive" --name "resnet-serving/tfserving-stand-in:$tfserving_version" \
    --entrypoint '["/usr/bin/tensorflow_model_server"]' --env PYTHONUNBUFFERED=1 \
    --label "org.opencontainers.image.description=resnet-serving serve-local standing in for tensorflow/serving"
}
project_hash="$(cd "$root" && find pyproject.toml tooling -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
  | sort | xargs sha256sum | sha256sum)"
image tfserving-stand-in "resnet-serving/tfserving-stand-in:$tfserving_version" \
  "$(input_hash "$here/tfserving-stand-in/tensorflow_model_server" -- "$project_hash" \
    "$("$python" -m pip freeze --exclude-editable | sha256sum)")" build_tfserving

#!/bin/sh
# Fills MODEL_DIR with a TensorFlow SavedModel in TF Serving's layout (<version>/saved_model.pb)
# from MODEL_SOURCE_URI (gs://… or https://….tar.gz), or, with no URI, checks the model already
# on the mounted volume. Exits non-zero with one readable line when anything is wrong, so the
# pod shows it (kubectl describe pod / kubectl logs -c fetch-model) and the server never starts
# without a model. For https:// curl trusts CURL_CA_BUNDLE when it is set (model.source.caBundle,
# a private CA), else the image's CA certificates. For gs:// it waits for GKE's metadata
# server: GCE_METADATA_ATTEMPTS (12) tries, GCE_METADATA_RETRY_SECONDS (5) apart.
set -eu

say() { echo "fetch-model: $*"; }
fail() {
  echo "fetch-model: ERROR: $*" >&2
  echo "fetch-model: $*" > "${TERMINATION_LOG:-/dev/termination-log}" 2>/dev/null || true
  exit 1
}

src="${MODEL_SOURCE_URI:-}"
dest="${MODEL_DIR:?MODEL_DIR is not set}"

case "$src" in
  gs://*)
    command -v gcloud >/dev/null 2>&1 || fail "gcloud not found in this image; set model.fetcher.gcsImage to a Google Cloud CLI image"
    say "copying ${src%/}/ to $dest with gcloud storage (credentials from Workload Identity)"
    mkdir -p "$dest"
    # gcloud asks the metadata server whether it runs on GCE and keeps the answer in this file
    # for 10 minutes. At pod start GKE's metadata server may not answer yet: gcloud then writes
    # "False", finds no credentials, and would trust that answer on every retry, including an
    # earlier run's (the file is on the pod's /tmp emptyDir, which outlives this container).
    gce_cache="${CLOUDSDK_CONFIG:-$HOME/.config/gcloud}/gce"
    attempts="${GCE_METADATA_ATTEMPTS:-12}"
    pause="${GCE_METADATA_RETRY_SECONDS:-5}"
    rm -f "$gce_cache"
    attempt=1
    until gcloud storage cp --recursive "${src%/}/*" "$dest/"; do
      if [ "$(cat "$gce_cache" 2>/dev/null)" != "False" ]; then
        fail "could not copy ${src}: check that the path exists and that the pod's Kubernetes ServiceAccount is bound (Workload Identity) to a Google service account with storage.objects.get and storage.objects.list on the bucket"
      fi
      [ "$attempt" -lt "$attempts" ] \
        || fail "the GKE metadata server did not answer after $attempts attempts, so gcloud found no Workload Identity credentials for ${src}: check that the node pool runs GKE's metadata server (workload metadata mode GKE_METADATA)"
      attempt=$((attempt + 1))
      say "the GKE metadata server is not answering yet (gcloud cached 'not on GCE' in $gce_cache); removed that cache, retrying in ${pause} s (attempt $attempt of $attempts)"
      rm -f "$gce_cache"
      sleep "$pause"
    done
    ;;
  https://*)
    command -v curl >/dev/null 2>&1 || fail "curl not found in this image; set model.fetcher.image to an image with sh, curl and tar"
    staging="$(mktemp -d)"
    say "downloading $src"
    status=0
    curl --fail --silent --show-error --location --retry 3 --output "$staging/model.tar.gz" "$src" \
      2>"$staging/curl.err" || status=$?
    # curl's own last error line goes into the message: the pod's termination message (kubectl
    # describe) holds only what fail() writes, not the log above it
    cat "$staging/curl.err" >&2
    curl_error="curl exit $status"
    while IFS= read -r line; do
      case "$line" in "curl: "*) curl_error="$line" ;; esac
    done < "$staging/curl.err"
    case "$status" in
      0) ;;
      60)
        if [ -n "${CURL_CA_BUNDLE:-}" ]; then
          fail "the server of $src presented a certificate that the CA bundle $CURL_CA_BUNDLE (model.source.caBundle) does not trust (${curl_error}): check that model.source.caBundle names the ConfigMap and key of the CA that signed the server's certificate, and that the certificate names the host"
        fi
        fail "the server of $src presented a certificate that the image's CA certificates do not trust (${curl_error}): for a model store behind a private CA, set model.source.caBundle.configMap and .key to a ConfigMap holding that CA's PEM certificate (kube-root-ca.crt, key ca.crt, holds the cluster's CA)"
        ;;
      77) fail "could not read the CA bundle ${CURL_CA_BUNDLE:-of the image} (curl exit 77): model.source.caBundle must name a ConfigMap key holding PEM certificates" ;;
      *) fail "could not download $src (${curl_error}): check the URL (model.source.uri) and that the cluster can reach it" ;;
    esac
    mkdir -p "$staging/unpacked"
    tar -xzf "$staging/model.tar.gz" -C "$staging/unpacked" \
      || fail "$src is not a gzip-compressed tar archive; make one with 'resnet-serving model package'"
    root="$staging/unpacked"
    # Accept one leading directory (e.g. a tarball of image_classifier/1/…).
    entries="$(ls -A "$root")"
    if [ "$(echo "$entries" | wc -l)" -eq 1 ] && [ -d "$root/$entries" ]; then
      case "$entries" in *[!0-9]*) root="$root/$entries" ;; esac
    fi
    mkdir -p "$dest"
    cp -R "$root"/. "$dest"/
    rm -rf "$staging"
    ;;
  "")
    say "checking the model on the mounted volume at $dest"
    [ -d "$dest" ] || fail "no directory $dest on the volume from model.source.existingClaim; the claim must hold <model.name>/<version>/saved_model.pb"
    ;;
  *)
    fail "unsupported model URI '$src': use gs://BUCKET/PATH or https://HOST/PATH.tar.gz"
    ;;
esac

versions=""
for dir in "$dest"/*/; do
  [ -d "$dir" ] || continue
  version="$(basename "$dir")"
  case "$version" in *[!0-9]*) continue ;; esac
  if [ -f "$dir/saved_model.pb" ]; then versions="$versions $version"; fi
done
if [ -z "$versions" ]; then
  found="$(ls -A "$dest" 2>/dev/null | head -n 10 | tr '\n' ' ')"
  fail "no model version found from ${src:-the existing claim}: expected a numeric version directory holding saved_model.pb (e.g. 1/saved_model.pb); found: ${found:-nothing}"
fi
say "model ready in $dest, versions:$versions"

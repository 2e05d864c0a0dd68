#!/usr/bin/env bash
# `make docs`: writes charts/*/README.md from each chart's README.md.gotmpl (the prose) and the
# `# --` comments in its values.yaml (the values table), with the pinned helm-docs that
# `make setup` builds. Extra flags go to helm-docs (tests/test_chart_docs.py adds --dry-run).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
helm_docs="${RESNET_SERVING_TOOLS:-$root/.tools/bin}/helm-docs"  # as hack/build-lib.sh
if [[ ! -x "$helm_docs" ]]; then
  echo "helm-docs is not installed in $(dirname "$helm_docs"): run \`make setup\`" >&2
  exit 2
fi
cd "$root"
exec "$helm_docs" --chart-search-root charts --sort-values-order file --log-level warning "$@"

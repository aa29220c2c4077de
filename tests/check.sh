#!/usr/bin/env bash
# Everything CI checks, in order: the notebooks and the package agree, the test suite, then every notebook
# executed by nbval. Run from any directory with the project's environment on PATH (see README).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== nbdev-clean and nbdev-export leave the tree unchanged"
if git rev-parse --git-dir >/dev/null 2>&1; then
  nbdev-clean && nbdev-export
  if [ -n "$(git status --porcelain -- nbs farmer)" ]; then
    git status --porcelain -- nbs farmer; git diff --stat -- nbs farmer
    echo "FAIL: nbdev-clean/nbdev-export changed nbs/ or farmer/: run both and commit the result"; exit 1
  fi
else
  echo "(not a git checkout: skipped)"
fi

echo "== pytest"
python -m pytest -q tests          # exit 5 (no tests collected) fails too, through set -e

echo "== nbval on an output-stripped copy of every notebook"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r nbs "$tmp/nbs"
nbdev-clean --clear-all --fname "$tmp/nbs"
mkdir -p "$tmp/figures"
(cd "$tmp/nbs" && FARMER_FAST=1 MPLBACKEND=Agg python -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider .)

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

echo "== ruff format: the notebooks' code cells, the tests, the benchmarks and the experiments (line length 120, pyproject.toml)"
ruff format --check nbs tests bench experiments

# The offline Fashion-MNIST copy beside a development checkout, when there is one (tests skip what needs it otherwise)
if [ -z "${FARMER_DATA:-}" ] && [ -d ../shared/data/FashionMNIST ]; then export FARMER_DATA="$(cd ../shared/data && pwd)"; fi

echo "== pytest"
python -m pytest -q tests          # the whole suite, slow tests included; exit 5 (no tests collected) fails too, through set -e

echo "== a plain (non-editable) install evaluates offline: the classifier weights ship as package data"
whl=$(mktemp -d)
pip wheel -q --no-deps -w "$whl" . && pip install -q --no-deps --target "$whl/site" "$whl"/farmer-*.whl
(cd "$whl" && PYTHONPATH="$whl/site" python -c "
import farmer, farmer.classifier as c
assert farmer.__file__.startswith('$whl'), farmer.__file__
net, meta = c.load_classifier('digits')
print('weights from', c.DATA_DIR, '- held-out accuracy', meta['test_accuracy'])")
rm -rf "$whl"

echo "== nbval on an output-stripped copy of every notebook"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r nbs "$tmp/nbs"
nbdev-clean --clear-all --fname "$tmp/nbs"
mkdir -p "$tmp/figures" && cp figures/*.json figures/*.png "$tmp/figures/"   # the measurements and figures chapters read
# The chapters that only read a trained model (20-22) run on the converged Fashion-MNIST models kept at budget B
# (data/budget-B/, FAST mode: one seed, few samples) where the Fashion-MNIST images are present; on 60-step digits toys
# like the rest where they are not.
on_kept=()
if python -c "from farmer.data import load_dataset; load_dataset('fashion-mnist', 'test')" >/dev/null 2>&1; then
  on_kept=($(cd nbs && ls 2[0-2]_*.ipynb))
fi
(cd "$tmp/nbs" && FARMER_FAST=1 MPLBACKEND=Agg python -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider \
  . "${on_kept[@]/#/--ignore=}")
if [ ${#on_kept[@]} -gt 0 ]; then
  echo "== nbval: ${on_kept[*]} on the Fashion-MNIST models kept at budget B"
  (cd "$tmp/nbs" && FARMER_FAST=1 FARMER_ANALYSIS_DATA=fashion-mnist FARMER_BUDGET=B MPLBACKEND=Agg \
    python -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider "${on_kept[@]}")
fi

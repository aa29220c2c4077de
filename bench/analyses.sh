#!/usr/bin/env bash
# Regenerates every analysis figure (figures/*-<dataset>.png) and the README's claims table: the four analysis
# chapters (nbs/20-23) in FULL mode on each dataset, then README.md. Fashion-MNIST runs are executed in place (the
# notebooks' committed outputs); digits runs into a temporary copy (figures and claims only). Trained runs in
# runs/analysis/<dataset>/ are reused and unfinished ones resumed (farmer.analysis.ensure_run), so it can be stopped and rerun.
# Fashion-MNIST must be under $FARMER_DATA (default ~/.cache/farmer); it is fetched with torchvision when missing.
#
#   bash bench/analyses.sh                  # digits, then fashion-mnist
#   bash bench/analyses.sh fashion-mnist    # one dataset
set -euo pipefail
cd "$(dirname "$0")/.."
datasets=${*:-digits fashion-mnist}
start=$(date +%s)
for ds in $datasets; do
  python -c "from farmer.data import load_dataset as L; [L('$ds', s, download=True) for s in ('train', 'test')]"
  tmp=$(mktemp -d)
  for nb in nbs/2[0-3]_*.ipynb; do
    if [ "$ds" = fashion-mnist ]; then out=(--inplace); else out=(--output-dir "$tmp"); fi
    echo "== $ds: $nb ($(( ($(date +%s) - start) / 60 )) min so far)"
    FARMER_ANALYSIS_DATA=$ds MPLBACKEND=Agg jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 "${out[@]}" "$nb"
  done
  rm -rf "$tmp"
done
nbdev-clean
python tests/readme.py
echo "analyses regenerated in $(( ($(date +%s) - start) / 60 )) min"

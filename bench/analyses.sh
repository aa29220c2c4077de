#!/usr/bin/env bash
# Regenerates every analysis figure (figures/*-<dataset>.png), figures/claims.json and figures/samples.json: the analysis
# chapters (nbs/20-23) in FULL mode on each dataset, then the split and results chapters (24, 25, which only read the
# measurements) and README.md. Fashion-MNIST runs are executed in place (the notebooks' committed outputs); digits runs
# into a temporary copy (figures and claims only). Trained runs in runs/analysis/<dataset>/ are reused and unfinished
# ones resumed (farmer.analysis.ensure_run), and the sampling chapter's scores are read back from
# runs/analysis/<dataset>[-B]/sampling-scores.jsonl (farmer.analysis.cached), so it can be stopped and rerun. The split chapter's table comes from
# `python bench/split_variants.py`, run before this.
# Fashion-MNIST must be under $FARMER_DATA (default ~/.cache/farmer); it is fetched with torchvision when missing.
#
#   bash bench/analyses.sh                  # digits, then fashion-mnist
#   bash bench/analyses.sh fashion-mnist    # one dataset
#   FARMER_BUDGET=B bash bench/analyses.sh  # the sampling-knobs chapter (22) and the distillation claim
#                                           # (`python bench/distill_kept.py`) on the Fashion-MNIST models kept at budget B
#                                           # in data/budget-B/ (`python bench/sample_models.py` trains them; none here)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${FARMER_BUDGET:-short}" = B ]; then default=fashion-mnist chapters=(nbs/22_*.ipynb); else default="digits fashion-mnist" chapters=(nbs/2[0-3]_*.ipynb); fi
datasets=${*:-$default}
start=$(date +%s)
# The Fashion-MNIST chapter model (`fashion-mnist-samples`, seeds 0-2) is the split study's no-split row: the same config,
# so its runs are reused when they exist (ensure_run refuses them if the configs ever differ).
for s in 0 1 2; do
  src=runs/split/no-split-seed$s dst=runs/analysis/fashion-mnist/model-seed$s
  if [ -f "$src/summary.json" ] && [ ! -e "$dst" ]; then mkdir -p "$(dirname "$dst")" && cp -r "$src" "$dst"; fi
done
for ds in $datasets; do
  python -c "from farmer.data import load_dataset as L; [L('$ds', s, download=True) for s in ('train', 'test')]"
  tmp=$(mktemp -d)
  for nb in "${chapters[@]}"; do
    if [ "$ds" = fashion-mnist ]; then out=(--inplace); else out=(--output-dir "$tmp"); fi
    echo "== $ds: $nb ($(( ($(date +%s) - start) / 60 )) min so far)"
    FARMER_ANALYSIS_DATA=$ds MPLBACKEND=Agg jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 "${out[@]}" "$nb"
  done
  rm -rf "$tmp"
done
if [ "${FARMER_BUDGET:-short}" = B ]; then python bench/distill_kept.py; fi
for nb in nbs/24_*.ipynb nbs/25_*.ipynb; do  # they read both budgets themselves
  env -u FARMER_BUDGET MPLBACKEND=Agg jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 --inplace "$nb"
done
nbdev-clean
python tests/readme.py
echo "analyses regenerated in $(( ($(date +%s) - start) / 60 )) min"

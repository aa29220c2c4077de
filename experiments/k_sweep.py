"""The mixture size at FARMER's flow: is held-out BPD monotone in K, and is K = 8 worse than both neighbours?

Fashion-MNIST, no split, the flow at FARMER's width (128), the informative prior with K in `KS` components (K = 1: the
AF alone at that flow), each trained for its own 10,000-step schedule (lr 3e-3, the cosine) with `SEEDS`:

    python -m experiments run k_sweep [--max-new-runs N] --data-root DIR

The output (`figures/k-sweep.json`) gives, per K, each seed's best validation BPD and test BPD, and the test BPD's
difference from K = 1 paired by seed (positive: K components better than one) with its t-interval.
"""

import json
from pathlib import Path
from farmer.config import preset
from farmer.analysis import effect
from farmer.train import ensure_run
from experiments import Experiment, Run
from experiments.records import learning_curve

KS, SEEDS, STEPS, LR = (1, 2, 4, 8, 16, 32), (0, 1), 10_000, 3e-3


def config(K: int, seed: int):
    "The sweep's recipe with a K-component informative prior."
    return preset('fashion-mnist', K_I=K, d_I=None, af_width=128, lr=LR, steps=STEPS, seed=seed)


def run(K: int, seed: int) -> Run:
    cfg = config(K, seed)

    def train(out: Path, data_root: str | None) -> Path:
        ensure_run(cfg, out, data_root=data_root, compile=True, progress=True)
        return out

    return Run(f'k{K}-s{seed}', cfg, train)


def keep(out: Path, r: Run) -> dict:
    return dict(summary=json.loads((out / 'summary.json').read_text()), **learning_curve(out / 'metrics.jsonl'))


def summarize(record: dict) -> dict:
    "Per K: the seeds' validation and test BPD, and the paired difference from K = 1 over the seeds both have."
    out = {}
    for K in KS:
        have = {s: record[f'k{K}-s{s}']['summary'] for s in SEEDS if f'k{K}-s{s}' in record}
        row = dict(
            seeds=sorted(have),
            val_bpd=[v['best_val_bpd'] for v in have.values()],
            test_bpd=[v['test_bpd'] for v in have.values()],
        )
        both = [s for s in have if f'k1-s{s}' in record]
        if K != 1 and len(both) > 1:
            base = [record[f'k1-s{s}']['summary']['test_bpd'] for s in both]
            row['vs_K1'] = effect(base, [have[s]['test_bpd'] for s in both], paired=True)
        out[str(K)] = row
    return dict(steps=STEPS, lr=LR, rows=out)


EXPERIMENT = Experiment(
    name='k_sweep',
    about=f'informative mixture size K in {KS} at flow width 128, {STEPS:,} steps, seeds {SEEDS} (Fashion-MNIST)',
    grid=lambda: [run(K, s) for s in SEEDS for K in KS],
    keep=keep,
    summarize=summarize,
)

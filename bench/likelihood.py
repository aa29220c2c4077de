"""Held-out likelihood of FARMER against the flow it extends, side by side: on the same data, steps and recipe, with
parameter counts within 10% of each other, train

- FARMER (the dataset's preset: AF + AR with per-token informative GMMs and the shared redundant GMM),
- the AF alone (`K_I=1, d_I=None`: every latent token gets one diagonal Gaussian from the AR, i.e. a TARFlow-style
  flow whose last step is one more autoregressive affine block, paper Appendix A.1), and
- JetFormer's factor-out (`redundant='normal'`: the redundant channels get N(0, I); with the split of `SPLIT`, since
  the default digits model has none),

each with several seeds, and print the held-out BPD (mean ± sd over seeds) and FARMER's relative gain over the AF.
Runs go to `runs/likelihood/<dataset>/<model>-seed<k>` and are reused when finished (resumed when cut short), so the
table can be built in parts; the numbers go to `figures/likelihood.json`, which the README quotes.

    python bench/likelihood.py [--datasets digits,fashion-mnist] [--seeds 2] [--data-root DIR]

Fashion-MNIST needs its four IDX files under DATA_ROOT/FashionMNIST/raw/ (`farmer-train --preset fashion-mnist
--download` fetches them) or `--data-root`/$FARMER_DATA pointing at a copy.
"""
import argparse, json, statistics
from pathlib import Path
import torch
from farmer import FarmerConfig
from farmer.model import param_counts
from farmer.analysis import ensure_run

SPLIT = {'digits': 2, 'fashion-mnist': 8}   # d_I of the factor-out row (the default digits model has no split)
MODELS = {'FARMER': lambda ds: {}, 'AF alone (K=1, no split)': lambda ds: dict(K_I=1, d_I=None),
          'factor-out (z_R ~ N(0, I))': lambda ds: dict(redundant='normal', d_I=SPLIT[ds])}

def slug(name: str) -> str: return name.split(' ')[0].lower()

def run_table(dataset: str, seeds: int, data_root: str | None, only: tuple = tuple(slug(m) for m in MODELS)) -> dict:
    "Train (or reuse) every model x seed of `dataset`; return {model: {params, bpd: [per seed], mean, sd}}."
    rows = {}
    for name, kw in MODELS.items():
        if slug(name) not in only: continue
        bpds = []
        for seed in range(seeds):
            cfg = FarmerConfig.preset(dataset, seed=seed, **kw(dataset))
            s = ensure_run(cfg, Path('runs/likelihood') / dataset / f'{slug(name)}-seed{seed}', progress=False, data_root=data_root)
            bpds.append(s['best_heldout_bpd'])
            print(f"  {dataset:14s} {name:28s} seed {seed}: best held-out BPD {bpds[-1]:.4f} (step {s['best_step']}, {s['wall_s']:.0f} s)", flush=True)
        rows[name] = dict(params=param_counts(cfg)['total'], steps=cfg.steps, bpd=bpds, mean=statistics.mean(bpds),
                          sd=statistics.stdev(bpds) if len(bpds) > 1 else float('nan'))
    return rows

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--datasets', default='digits,fashion-mnist', help='presets to compare (comma-separated)')
    p.add_argument('--seeds', type=int, default=2)
    p.add_argument('--models', default=','.join(m.split(' ')[0] for m in MODELS), help='which rows to train (first words: FARMER,AF,factor-out)')
    p.add_argument('--data-root', help='data root for Fashion-MNIST (default: $FARMER_DATA or ~/.cache/farmer)')
    p.add_argument('--out', default='figures/likelihood.json')
    a = p.parse_args()
    path = Path(a.out)
    for ds in a.datasets.split(','):
        rows = run_table(ds, a.seeds, a.data_root, tuple(m.lower() for m in a.models.split(',')))
        result = json.loads(path.read_text()) if path.is_file() else {}          # re-read: another process may have written rows
        result[ds] = {**result.get(ds, {}), **rows}
        path.parent.mkdir(exist_ok=True); path.write_text(json.dumps(result, indent=1))
    print(f"\n| dataset | model | parameters | steps | held-out BPD (mean ± sd, {a.seeds} seeds) | vs the AF alone |\n|---|---|---|---|---|---|")
    for ds in a.datasets.split(','):
        rows = result[ds]; af = rows.get('AF alone (K=1, no split)')
        if af is None or 'FARMER' not in rows: continue
        for name, r in ((n, rows[n]) for n in MODELS if n in rows):
            g = 100 * (1 - r['mean'] / af['mean'])
            gain = 'baseline' if r is af else f"{g:.1f}% lower" if g >= 0 else f"{-g:.1f}% higher"
            print(f"| {ds} | {name} | {r['params'] / 1e6:.2f}M ({100 * (r['params'] / rows['FARMER']['params'] - 1):+.1f}%) | {r['steps']} "
                  f"| {r['mean']:.3f} ± {r['sd']:.3f} | {gain} |")

if __name__ == '__main__':
    torch.set_num_threads(min(2, torch.get_num_threads()))
    main()

"""Does an average of the weights help the Fashion-MNIST chapter model? The chapter model's preset
(`fashion-mnist-samples`, the Gaussian-noise sample recipe, 2,000 steps) trained with an exponential moving average of
its weights at each decay of `DECAYS` (`--ema D`), seeds 0 and 1; each run scores the raw weights and their average on the
validation split as it goes (validation BPD), and afterwards `farmer-eval --split val` gives both FIDs (1,000 samples,
the offline extractor). Raw and average come from the same run, so each effect is paired per seed. Test is not touched.

    python bench/ema.py --data-root DIR [--runs runs/ema] [--max-new-runs 1]   # trains what the record lacks
    python bench/ema.py                                                        # prints the record

Writes `figures/ema.json`: per run the best and final validation BPD and the FID of both weights, and per decay the
paired effects (positive: the average is better).
"""

import argparse, json
from pathlib import Path
from farmer.config import preset
from farmer.analysis import effect
from farmer.train import ensure_run
from farmer.eval import evaluate_run

DECAYS, SEEDS, N = (0.99, 0.999), (0, 1), 1000
OUT = Path(__file__).resolve().parents[1] / 'figures' / 'ema.json'
METRICS = ('best_val_bpd', 'final_val_bpd', 'val_fid')


def score(run: Path) -> dict:
    "Validation BPD (from the run) and validation FID of the raw and the averaged weights of one finished run."
    s = json.loads((run / 'summary.json').read_text())
    fid = {w: evaluate_run(run, n=N, split='val', ema=w == 'ema', device='cpu')[0]['fid'] for w in ('raw', 'ema')}
    bpd = {k: s[k] for k in ('best_val_bpd', 'final_val_bpd')} | {
        f'{k}_ema': s[f'{k}_ema'] for k in ('best_val_bpd', 'final_val_bpd')
    }
    return bpd | dict(val_fid=fid['raw'], val_fid_ema=fid['ema'], train_s=s['train_s'])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data-root')
    p.add_argument('--runs', default='runs/ema')
    p.add_argument('--max-new-runs', type=int, default=0, help='train at most this many missing runs (0: print only)')
    a = p.parse_args()
    rec = json.loads(OUT.read_text()) if OUT.is_file() else dict(n=N, runs={})
    for decay in DECAYS:
        for seed in SEEDS:
            key = f'decay={decay}_seed={seed}'
            if key in rec['runs'] or a.max_new_runs <= 0:
                continue
            run = Path(a.runs) / key
            ensure_run(
                preset('fashion-mnist-samples', ema=decay, seed=seed), run, data_root=a.data_root, progress=False
            )
            rec['runs'][key] = score(run)
            a.max_new_runs -= 1
            OUT.write_text(json.dumps(rec, indent=1) + '\n')
    rec['effects'] = {}
    for decay in DECAYS:
        rows = [rec['runs'][k] for s in SEEDS if (k := f'decay={decay}_seed={s}') in rec['runs']]
        if len(rows) >= 2:
            rec['effects'][str(decay)] = {
                k: effect([r[k] for r in rows], [r[f'{k}_ema'] for r in rows], paired=True) for k in METRICS
            }
    OUT.write_text(json.dumps(rec, indent=1) + '\n')
    print(json.dumps(rec, indent=1))


if __name__ == '__main__':
    main()

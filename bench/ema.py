"""Does an average of the weights help the Fashion-MNIST chapter model? The chapter model's preset
(`fashion-mnist-samples`, the Gaussian-noise sample recipe) trained with an exponential moving average of its weights
(`--ema 0.999`), seeds 0-2; each run scores the raw weights and their average on the validation split as it goes
(validation BPD), and afterwards `farmer-eval --split val` gives both FIDs (1,000 samples, the offline extractor).
Raw and average come from the same run, so the effect is paired per seed. Test is not touched.

    python bench/ema.py --data-root DIR [--runs runs/ema] [--max-new-runs 1]   # trains what the record lacks
    python bench/ema.py                                                        # prints the record

Writes `figures/ema.json`: per seed the best and final validation BPD and the FID of both weights, and the paired effects.
"""

import argparse, json
from pathlib import Path
from farmer.config import preset
from farmer.analysis import ensure_run, effect
from farmer.eval import evaluate_run

DECAY, SEEDS, N = 0.999, (0, 1, 2), 1000
OUT = Path(__file__).resolve().parents[1] / 'figures' / 'ema.json'


def score(run: Path) -> dict:
    "Validation BPD (from the run) and validation FID of the raw and the averaged weights of one finished run."
    s = json.loads((run / 'summary.json').read_text())
    fid = {w: evaluate_run(run, n=N, split='val', ema=w == 'ema', device='cpu')[0]['fid'] for w in ('raw', 'ema')}
    return dict(
        best_val_bpd=s['best_val_bpd'],
        best_val_bpd_ema=s['best_val_bpd_ema'],
        final_val_bpd=s['final_val_bpd'],
        final_val_bpd_ema=s['final_val_bpd_ema'],
        val_fid=fid['raw'],
        val_fid_ema=fid['ema'],
        train_s=s['train_s'],
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data-root')
    p.add_argument('--runs', default='runs/ema')
    p.add_argument('--max-new-runs', type=int, default=0, help='train at most this many missing seeds (0: print only)')
    a = p.parse_args()
    rec = json.loads(OUT.read_text()) if OUT.is_file() else dict(decay=DECAY, n=N, seeds={})
    for seed in SEEDS:
        if str(seed) in rec['seeds'] or a.max_new_runs <= 0:
            continue
        cfg = preset('fashion-mnist-samples', ema=DECAY, seed=seed)
        run = Path(a.runs) / f'seed{seed}'
        ensure_run(cfg, run, data_root=a.data_root, progress=False)
        rec['seeds'][str(seed)] = score(run)
        a.max_new_runs -= 1
        OUT.write_text(json.dumps(rec, indent=1) + '\n')
    rows = [rec['seeds'][str(s)] for s in SEEDS if str(s) in rec['seeds']]
    if len(rows) >= 2:  # positive effect: the average is better (lower)
        rec['effects'] = {
            k: effect([r[k] for r in rows], [r[f'{k}_ema'] for r in rows], paired=True)
            for k in ('best_val_bpd', 'final_val_bpd', 'val_fid')
        }
        OUT.write_text(json.dumps(rec, indent=1) + '\n')
    print(json.dumps(rec, indent=1))


if __name__ == '__main__':
    main()

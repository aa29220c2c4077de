"""The informative/redundant split on Fashion-MNIST under the paper's sample recipe: which channels are informative and
how many, trained equally, scored on samples and likelihood.

Every row is the `fashion-mnist` preset with the paper's Gaussian noise schedule (`dequant='gaussian'`) and the row's
flags, trained with `ensure_run` into `runs/split/<row>-seed<s>` (reused when finished, resumed when cut short). Each
run is scored on its best (validation-chosen) weights: validation and test BPD, and 1,000 samples per mode (unguided,
and resampling CFG at w = 2) against the validation and the test images with the offline extractor, with their class
consistency; and the two cause measurements of the split chapter: the share of a token's variance the split hands to the
redundant channels (`farmer.analysis.redundant_share`), and how much of the redundant channels of a latent token its own
informative channels predict (`farmer.analysis.redundancy_r2`). Rows already scored get only the measurements they lack.
Writes `figures/split-variants.json`, and `figures/split-samples.png`: unguided samples of every trained row (seed 0),
one class per column, beside real test images.

    python bench/split_variants.py [--rows no-split,pixel-8,...] [--seeds 0] [--steps 2000]
"""

import argparse, json
from pathlib import Path
import torch
from farmer.analysis import redundancy_r2, redundant_share
from farmer.train import ensure_run
from farmer.classifier import load_classifier, register_extractors
from farmer.config import preset
from farmer.data import open_splits
from farmer.eval import sample_scores
from farmer.plots import show_images
from farmer.sampling import Guidance, generate
from farmer.runs import load_run_model

ROWS = {  # row -> overrides of the fashion-mnist preset (d = 49 values per token)
    'no-split': dict(d_I=None),
    'pixel-8': dict(d_I=8),
    'pixel-16': dict(d_I=16),
    'dct-8': dict(d_I=8, basis='dct'),
    'random-8': dict(d_I=8, basis='random'),
    'mix-8': dict(d_I=8, mix='lu'),
    'mix-16': dict(d_I=16, mix='lu'),
    'dct-16': dict(d_I=16, basis='dct'),
    'latent-8': dict(d_I=8, mix='lu-latent'),
    'latent-16': dict(d_I=16, mix='lu-latent'),
    'token-8': dict(d_I=8, redundant='gmm-token'),  # a redundant GMM per token (ours)
    'token-16': dict(d_I=16, redundant='gmm-token'),
}
MODES = {'none': Guidance(), 'resample w=2': Guidance('resample', w=2.0)}


def score(run: Path, sets: dict, clf, n: int, done: dict | None = None) -> dict:
    "Validation and test BPD, sample metrics per mode against both splits (unless `done` has them), the two cause measurements."
    s = json.loads((run / 'summary.json').read_text())
    model = load_run_model(run, 'best')
    real = {k: sets[k].batch(torch.arange(len(sets[k])))[0] for k in ('val', 'test')}
    split = model.cfg.dim_R > 0
    out = dict(
        val_bpd=s['best_val_bpd'],
        test_bpd=s['test_bpd'],
        wall_s=s['wall_s'],
        r2=redundancy_r2(model, real['val'][:2000]) if split else None,
        share=redundant_share(model, real['val'][:2000]) if split else None,
    )
    if done and all(m in done for m in MODES):
        return done | out
    for mode, gd in MODES.items():
        sc = sample_scores(model, gd, real, n, 0, 'farmer-fashion-mnist', clf)
        out[mode] = dict(val_fid=sc['val']['fid'], test_fid=sc['test']['fid'], consistency=sc['consistency'])
    return out


def sample_grid(rows: list[str], sets: dict, out: Path, per_class: int = 2) -> None:
    "Unguided samples of each trained row's seed-0 model, `per_class` per class side by side, under the real test images."
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = [r for r in rows if (Path('runs/split') / f'{r}-seed0' / 'summary.json').is_file()]
    x, y = sets['test'].batch(torch.arange(len(sets['test'])))
    real = torch.cat([x[y == c][:per_class] for c in range(10)])
    labels = torch.arange(10).repeat_interleave(per_class)
    fig, axs = plt.subplots(len(rows) + 1, 1, figsize=(10, 0.95 * (len(rows) + 1)), gridspec_kw=dict(hspace=0.45))
    show_images(real, 10 * per_class, axs[0], 'real test images')
    for ax, r in zip(axs[1:], rows):
        model = load_run_model(Path('runs/split') / f'{r}-seed0', 'best')
        imgs = generate(model, labels, generator=torch.Generator().manual_seed(0))
        show_images(imgs, 10 * per_class, ax, f"{r} ({ROWS[r]})")
    fig.savefig(out, dpi=110, bbox_inches='tight')
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--rows', default=','.join(ROWS))
    p.add_argument('--seeds', default='0')
    p.add_argument('--steps', type=int, default=2000)
    p.add_argument('--n', type=int, default=1000)
    p.add_argument('--out', default='figures/split-variants.json')
    p.add_argument('--grid', default='figures/split-samples.png', help='the sample grid of every trained row (seed 0)')
    a = p.parse_args()
    register_extractors()
    clf = load_classifier('fashion-mnist')[0]
    path = Path(a.out)
    for row in a.rows.split(','):
        for seed in map(int, a.seeds.split(',')):
            cfg = preset('fashion-mnist', dequant='gaussian', steps=a.steps, seed=seed, **ROWS[row])
            run = Path('runs/split') / f'{row}-seed{seed}'
            ensure_run(cfg, run, progress=False, compile=True)
            sets = open_splits('fashion-mnist', val_images=cfg.val_images)
            table = json.loads(path.read_text()) if path.is_file() else {}
            r = score(run, sets, clf, a.n, table.get(row, {}).get(str(seed)))
            table.setdefault(row, {})[str(seed)] = {**r, 'overrides': ROWS[row], 'steps': a.steps}
            path.write_text(json.dumps(table, indent=1))
            print(
                f"{row:10s} seed {seed}: val BPD {r['val_bpd']:.3f}  test BPD {r['test_bpd']:.3f}  R² {r['r2'] if r['r2'] is None else round(r['r2'], 3)}  "
                + '  '.join(
                    f"{m}: FID val {r[m]['val_fid']:.1f} test {r[m]['test_fid']:.1f} cons {r[m]['consistency']:.2f}"
                    for m in MODES
                ),
                flush=True,
            )
    sample_grid(list(ROWS), open_splits('fashion-mnist', val_images=preset('fashion-mnist').val_images), Path(a.grid))


if __name__ == '__main__':
    main()

"""Sample quality over a training run: validation FID and class consistency of the weights a run kept at its evaluations
(`farmer-train --keep-evals` writes them to <run>/evals/), beside its validation BPD, one line per run (a colour per row:
the label without its '-seedN').

The JSON is also the record of these runs (config, summary, validation curve), as figures/likelihood-runs.json is of
the likelihood runs. Samples are drawn with a validation sampling seed (`--seed`, default 1): the test numbers of the chapters use seed 0, so
nothing chosen here is scored on the samples that are reported. Each run's scores are merged into the JSON by label, so
runs trained in different sittings add up; a (label, step) already scored is not scored again.

    python bench/over_training.py --runs no-split-seed0=runs/samples-long/no-split-seed0 [--every 5000] [--n 1000]
        [--test]   # writes figures/samples-over-training.json and figures/samples-over-training-fashion-mnist.png
    python bench/over_training.py   # only redraws the figures from the JSON
"""

import argparse, json, re, time
from pathlib import Path
import torch
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt
from farmer.classifier import load_classifier, register_extractors
from farmer.config import FarmerConfig
from farmer.data import open_splits
from farmer.eval import sample_scores
from farmer.runs import load_run_model
from farmer.runtime import read_jsonl
from farmer.sampling import Guidance


def kept_steps(run: Path, every: int) -> list[int]:
    "The steps of the weights `run` kept at its evaluations that are multiples of `every` (step 0 left out)."
    steps = sorted(
        int(m[1]) for p in (run / 'evals').glob('step*.safetensors') if (m := re.fullmatch(r'step(\d+)', p.stem))
    )
    if not steps:
        raise SystemExit(f"{run} kept no evaluation weights: train it with farmer-train --keep-evals")
    return [s for s in steps if s and (s % every == 0 or s == steps[-1])]


def row_of(label: str) -> str:
    "The row of a run label: 'no-split-seed1' -> 'no-split'."
    return re.sub(r'-seed\d+$', '', label)


def plot(res: dict, figures: Path) -> None:
    "figures/samples-over-training-<dataset>.png: validation FID, consistency and BPD over training, a colour per row, a line per seed."
    for ds in sorted({e['dataset'] for e in res.values()}):
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
        by_row = {}  # row -> its labels: one colour per row, a line per seed
        for label in sorted(lab for lab, e in res.items() if e['dataset'] == ds):
            by_row.setdefault(row_of(label), []).append(label)
        for i, (row, labels) in enumerate(sorted(by_row.items())):
            for label in labels:
                e = res[label]
                steps = sorted(int(s) for s in e['points'])
                for ax, key in zip(axes, ('fid', 'consistency', 'val_bpd')):
                    ax.plot(
                        steps,
                        [e['points'][str(s)][key] for s in steps],
                        '.-',
                        color=f'C{i}',
                        label=f"{row} ({len(labels)} seed{'s' * (len(labels) > 1)})" if label == labels[0] else None,
                    )
        for ax, t in zip(axes, ('validation FID (unguided; log scale)', 'class consistency', 'validation BPD')):
            ax.set(xlabel='training step', title=t)
            ax.grid(alpha=0.3)
        # the gaps between rows late in training are a few FID points: invisible on a linear axis
        axes[0].set_yscale('log')
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(figures / f'samples-over-training-{ds}.png', dpi=110)
        plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--runs', nargs='*', default=[], metavar='LABEL=DIR', help='none: only redraw the figures')
    ap.add_argument('--every', type=int, default=5000, help='score every this many steps (and the last)')
    ap.add_argument('--n', type=int, default=1000, help='samples per point')
    ap.add_argument('--seed', type=int, default=1, help='sampling seed (validation: not 0, which the test numbers use)')
    ap.add_argument('--out', default='figures/samples-over-training.json')
    ap.add_argument(
        '--test', action='store_true', help="also score the run's best weights once on the test split (sampling seed 0)"
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    res = json.loads(out.read_text()) if out.is_file() else {}
    for spec in args.runs:
        label, run = spec.split('=', 1)
        run = Path(run)
        steps, cfg = kept_steps(run, args.every), FarmerConfig.from_dict(json.loads((run / 'config.json').read_text()))
        sets = open_splits(cfg.dataset, None, False, cfg.image_size, cfg.val_images)
        images = lambda split: sets[split].batch(torch.arange(len(sets[split])))[0]
        real = images('val')
        clf, name = load_classifier(cfg.dataset)[0], f'farmer-{cfg.dataset}'
        register_extractors()
        evals = {r['step']: r['val_bpd'] for r in read_jsonl(run / 'metrics.jsonl') if 'val_bpd' in r}
        entry = res.setdefault(
            label, dict(run=str(run), dataset=cfg.dataset, steps=cfg.recipe.steps, seed=args.seed, points={})
        )
        entry['config'], entry['val_curve'] = cfg.to_dict(), {str(k): v for k, v in evals.items()}  # the run record
        if (run / 'summary.json').is_file():
            entry['summary'] = json.loads((run / 'summary.json').read_text())
        for step in steps:
            if str(step) in entry['points']:
                continue
            t = time.time()
            model = load_run_model(run, f'evals/step{step:06d}')
            val_bpd = evals[step]
            s = sample_scores(model, Guidance(), real, args.n, args.seed, name, clf)
            entry['points'][str(step)] = dict(val_bpd=val_bpd, fid=s['fid'], consistency=s['consistency'])
            print(
                f"{label} step {step}: val BPD {val_bpd:.3f}, val FID {s['fid']:.2f}, consistency {s['consistency']:.3f} ({time.time() - t:.0f} s)",
                flush=True,
            )
            out.write_text(json.dumps(res, indent=1) + '\n')
        if args.test and 'test' not in entry:
            best = entry['summary']  # a finished run's
            s = sample_scores(load_run_model(run), Guidance(), images('test'), args.n, 0, name, clf)
            entry['test'] = dict(
                step=best['best_step'],
                bpd=best['test_bpd'],
                fid=s['fid'],
                consistency=s['consistency'],
                n=args.n,
                seed=0,
            )
            print(f"{label} best weights (step {best['best_step']}) on the test split: {entry['test']}", flush=True)
            out.write_text(json.dumps(res, indent=1) + '\n')
    plot(res, out.parent)
    print(f"wrote {out} and its figures")


if __name__ == '__main__':
    main()

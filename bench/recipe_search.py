"""The digits likelihood recipe search of the likelihood chapter: each row is a full run (`farmer-train` with the listed
overrides of the `digits` preset's *model*, trained into `runs/recipe-search/<row>`), one change at a time from a base
recipe, so the table says what each setting is worth. Rows are compared on the validation split (the best validation
BPD of each run); the test BPD of each row's best weights is recorded but chooses nothing. Finished runs are reused and
unfinished ones resumed (`ensure_run`), so the search can be done in parts. Writes `figures/recipe-search.json`, which
the likelihood chapter reads.

    python bench/recipe_search.py [--rows 'base;base, lr 3e-3'] [--list]
"""

import argparse, json
from pathlib import Path
import torch
from farmer.config import FarmerConfig, preset
from farmer.model import param_counts
from farmer.train import ensure_run

# The pre-search default (0.5M parameters, Gaussian noise, batch 128), then the base of the search: the TARFlow
# reference's size and recipe (width 128, AF 4x2, AR 4 layers, batch 64, lr 2e-3, uniform dequantisation).
OLD = dict(
    af_width=64, ar_width=64, ar_layers=2, d_I=2, K_I=8, K_R=8, batch_size=128, lr=1e-3, steps=1500, dequant='gaussian'
)
BASE = dict(
    af_width=128, ar_width=128, ar_layers=4, d_I=2, K_I=8, K_R=16, batch_size=64, lr=2e-3, steps=2000, dequant='uniform'
)
ROWS = {
    'old default': OLD,
    'base': BASE,
    'base, lr 3e-3': dict(BASE, lr=3e-3),
    'base, no split': dict(BASE, d_I=None),
    'no split, K_I 32': dict(BASE, d_I=None, K_I=32),
    'no split, weight decay 0.1': dict(BASE, d_I=None, weight_decay=0.1),
    'no split, K_I 32, gaussian': dict(BASE, d_I=None, K_I=32, dequant='gaussian'),
}


def row_config(name: str) -> FarmerConfig:
    return preset('digits', **{**ROWS[name], 'eval_every': 250})


def slug(name: str) -> str:
    return ''.join(c if c.isalnum() or c in '.-' else '_' for c in name)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--rows', default=';'.join(ROWS), help='row names separated by semicolons (default: all)')
    p.add_argument('--list', action='store_true', help='print the rows and exit')
    p.add_argument('--out', default='figures/recipe-search.json')
    a = p.parse_args()
    if a.list:
        print('\n'.join(f'{k}: {v}' for k, v in ROWS.items()))
        return
    torch.set_num_threads(min(2, torch.get_num_threads()))  # OMP_NUM_THREADS=1 runs two searches side by side
    path = Path(a.out)
    table = json.loads(path.read_text()) if path.is_file() else {}
    for name in a.rows.split(';'):
        cfg = row_config(name)
        s = ensure_run(cfg, Path('runs/recipe-search') / slug(name), progress=False, compile=True)
        table[name] = dict(
            overrides=ROWS[name],
            params_M=round(param_counts(cfg)['total'] / 1e6, 2),
            best_val_bpd=round(s['best_val_bpd'], 3),
            best_step=s['best_step'],
            final_val_bpd=round(s['final_val_bpd'], 3),
            test_bpd=round(s['test_bpd'], 3),
            wall_s=s['wall_s'],
        )
        print(
            f"{name:28s} {table[name]['params_M']:5.2f}M  best validation {table[name]['best_val_bpd']:.3f} (step {s['best_step']})  "
            f"final {table[name]['final_val_bpd']:.3f}  test {table[name]['test_bpd']:.3f}  {s['wall_s']:.0f} s",
            flush=True,
        )
        table = {
            **(json.loads(path.read_text()) if path.is_file() else {}),
            name: table[name],
        }  # other workers may have written rows
        path.write_text(json.dumps(table, indent=1))


if __name__ == '__main__':
    main()

"""The real-image reference of the sample tables: FID of n real training images against the test images, over 5 random
draws (`farmer.eval.real_reference`), written into figures/samples.json beside each chapter model's scores.

A model's FID is compared with this reference, not with a floor: one draw of n real images has a finite-sample FID of its
own, and it varies from draw to draw. The sampling-knobs chapter computes the same numbers when it runs in FULL mode;
this script computes them alone (seconds), for a samples.json written before the reference had 5 draws.

    FARMER_DATA=/path/to/data python bench/real_reference.py [--datasets digits fashion-mnist] [--draws 5]
"""

import argparse, json, statistics
from pathlib import Path
import torch
from farmer.analysis import ANALYSIS_DATA
from farmer.config import preset
from farmer.data import open_splits
from farmer.eval import real_reference


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--datasets', nargs='+', default=['digits', 'fashion-mnist'])
    ap.add_argument('--draws', type=int, default=5)
    ap.add_argument('--out', default='figures/samples.json')
    args = ap.parse_args()
    out = Path(args.out)
    res = json.loads(out.read_text())
    for ds in args.datasets:
        if ds not in res:
            print(f"{ds}: no chapter-model scores in {out}; skipped")
            continue
        name, over = ANALYSIS_DATA[ds]['model']
        sets = open_splits(ds, val_images=preset(name, **over).val_images)
        test = sets['test'].batch(torch.arange(len(sets['test'])))[0]
        e = res[ds]
        e['real_fid'] = real_reference(sets['train'], test, e['n'], f'farmer-{ds}', args.draws)
        e.pop('floor_fid', None)
        f = e['real_fid']
        print(
            f"{ds}: {e['n']} real training images against the {len(test)} test images, {len(f)} draws: FID "
            f"{statistics.mean(f):.2f} ± {statistics.stdev(f):.2f} {[round(v, 2) for v in f]}"
        )
        out.write_text(json.dumps(res, indent=1) + '\n')


if __name__ == '__main__':
    main()

"""How long the trained runs under a folder took: one line per run group (`runs/analysis/<dataset>/<row>-seed<s>` groups by
dataset), from the `wall_s` each run's `summary.json` records (resumed runs: the sum over their sittings, as `farmer-train`
records it). The README quotes it for the training half of `bash bench/analyses.sh`.

    python bench/run_times.py                    # runs/analysis
    python bench/run_times.py runs/likelihood
"""

import argparse, json
from collections import defaultdict
from pathlib import Path


def run_times(root: Path) -> dict[str, list[float]]:
    "Group (the folder under `root`) -> `wall_s` of every finished run in it."
    groups = defaultdict(list)
    for f in sorted(root.glob('*/*/summary.json')):
        groups[f.parent.parent.name].append(json.loads(f.read_text())['wall_s'])
    return dict(groups)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('root', nargs='?', default='runs/analysis', help='a folder of <group>/<run>/summary.json')
    a = p.parse_args()
    groups = run_times(Path(a.root))
    if not groups:
        raise SystemExit(f"no finished runs under {a.root}: train them first (bash bench/analyses.sh)")
    for g, t in groups.items():
        print(f"{g:16s} {len(t):3d} runs  {sum(t) / 60:6.0f} min of training  (longest {max(t) / 60:.1f} min)")


if __name__ == '__main__':
    main()

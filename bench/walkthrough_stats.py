"""How much of the walkthrough is method: README words, numbers and longest paragraph; per chapter of Parts I-III the
cells that are experiment bookkeeping (they read `figures/*.json`, name a `bench/` script, or talk of seeds, sittings or
this CPU) and its markdown words; the model's share of the package's lines; bench/ and experiments/ lines and mains.

    python bench/walkthrough_stats.py [REV]     # a git revision (default HEAD), read with `git show`
"""

import json, re, subprocess, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests'))
from readme import front_door_stats  # noqa: E402

rev = sys.argv[1] if len(sys.argv) > 1 else 'HEAD'


def show(p):
    r = subprocess.run(['git', 'show', f'{rev}:{p}'], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


def ls(d):
    return subprocess.run(
        ['git', 'ls-tree', '--name-only', f'{rev}', d + '/'], capture_output=True, text=True
    ).stdout.split()


print('README', front_door_stats(show('README.md')))
parts = [
    '00_config',
    '01_data',
    '03_transformer',
    '04_af',
    '05_gmm',
    '06_ar',
    '07_model',
    '10_loop',
    '12_train',
    '13_sampling',
    '15_eval',
    '16_distill',
    '02_imagenet',
    '08_runtime',
    '09_plots',
    '11_runs',
    '14_classifier',
    '18_budget',
    '19_cli',
]
book = re.compile(
    r"figures/[\w-]+\.json|figs\s*/\s*'[\w-]+\.json|bench/\w+\.(?:py|sh)|\bsittings?\b|\bseeds\b|grid search|this (?:2-core )?CPU|one run per sitting"
)
tot = 0
for nb in parts:
    s = show(f'nbs/{nb}.ipynb')
    cells = json.loads(s)['cells']
    b = sum(bool(book.search(''.join(c['source']))) for c in cells)
    w = sum(len(''.join(c['source']).split()) for c in cells if c['cell_type'] == 'markdown')
    tot += b
    print(f'{nb:15s} bookkeeping cells {b:2d}  markdown words {w}')
print('bookkeeping cells in Parts I-III:', tot)
lines = lambda p: len((show(p) or '').splitlines())
pkg = {p.split('/')[-1]: lines(p) for p in ls('farmer') if p.endswith('.py') and '_modidx' not in p}
model = sum(pkg.get(m + '.py', 0) for m in ('transformer', 'af', 'gmm', 'ar', 'model'))
print(f'package lines {sum(pkg.values())}, model {model} ({100 * model / sum(pkg.values()):.0f}%)')
for d in ('bench', 'experiments'):
    fs = [p for p in ls(d) if p.endswith('.py')]
    mains = sum('def main(' in show(p) or "__name__ == '__main__'" in show(p) for p in fs)
    print(f'{d}: {len(fs)} scripts, {sum(lines(p) for p in fs)} lines, {mains} with their own main')

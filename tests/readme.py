"""README.md is rendered from nbs/index.ipynb (nbdev-readme needs Quarto, which is not available here).

`python tests/readme.py` rewrites README.md; `tests/test_repo.py` fails when the two disagree.
Markdown cells are copied as they are; code cells become ```python blocks; cells with `#| hide` are left out.
The claims table between the CLAIMS markers is generated from figures/claims.json (written by the analysis notebooks in
FULL mode); `python tests/readme.py` refreshes it in nbs/index.ipynb first.
"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CLAIMS_START = '<!-- claims table: generated from figures/claims.json by `python tests/readme.py` -->'
CLAIMS_END = '<!-- end of claims table -->'

def claims_block() -> str:
    "The claims table as it should appear between the markers."
    from farmer.analysis import claims_table
    return f"{CLAIMS_START}\n{claims_table(ROOT / 'figures' / 'claims.json')}\n{CLAIMS_END}"

def refresh_claims(nb_path: Path = ROOT / 'nbs' / 'index.ipynb') -> None:
    "Rewrite the claims block of the index notebook's markdown from figures/claims.json."
    nb = json.loads(nb_path.read_text())
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown' and CLAIMS_START in src:
            head, rest = src.split(CLAIMS_START, 1)
            c['source'] = (head + claims_block() + rest.split(CLAIMS_END, 1)[1]).splitlines(True)
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

def render(nb_path: Path = ROOT / 'nbs' / 'index.ipynb') -> str:
    parts = []
    for c in json.loads(nb_path.read_text())['cells']:
        src = ''.join(c['source']).strip('\n')
        if c['cell_type'] == 'markdown': parts.append(src)
        elif not any(l.strip() in ('#| hide', '#|hide') for l in src.splitlines()): parts.append(f'```python\n{src}\n```')
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    refresh_claims()
    (ROOT / 'README.md').write_text(render())
    print('README.md written from nbs/index.ipynb')

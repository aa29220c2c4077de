"""README.md is rendered from nbs/index.ipynb (nbdev-readme needs Quarto, which is not available here).

`python tests/readme.py` rewrites README.md; `tests/test_repo.py` fails when the two disagree.
Markdown cells are copied as they are; code cells become ```python blocks; cells with `#| hide` are left out.
"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def render(nb_path: Path = ROOT / 'nbs' / 'index.ipynb') -> str:
    parts = []
    for c in json.loads(nb_path.read_text())['cells']:
        src = ''.join(c['source']).strip('\n')
        if c['cell_type'] == 'markdown': parts.append(src)
        elif not any(l.strip() in ('#| hide', '#|hide') for l in src.splitlines()): parts.append(f'```python\n{src}\n```')
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    (ROOT / 'README.md').write_text(render())
    print('README.md written from nbs/index.ipynb')

"""The website: `sphinx-build -q nbs site` renders the chapters as they are committed (their stored outputs; nothing is
executed), the home page from `index.ipynb` (the README's source), and one API page per exported module.

Sphinx with MyST-NB because both install from PyPI alone (nbdev's own site builder needs Quarto's binary). The math
renderer is MathJax 2 from the `jupyter-server-mathjax` package, copied into the site, so the site works offline.
What the notebooks hold for Jupyter and nbdev is adapted here, on the way in (`prepare`): nbdev's `#|` directives and
hidden cells are dropped (`#| echo: false` shows the output only), the widget of the sampling chapter becomes a note, each chapter gets its paper reference
(`PAPER_REFS`), the home page's sidebar the README's parts, and the home page's repository links point at the pages.
"""

import json, re, shutil, zlib
from functools import cache
from pathlib import Path

import jupyter_server_mathjax

NBS = Path(__file__).resolve().parent
PAPER = 'arXiv:2510.23588 v2'

project, author, copyright = 'farmer', 'farmer developers', '2026, farmer developers'
extensions = ['myst_nb', 'sphinx.ext.autodoc', 'sphinx.ext.viewcode']
exclude_patterns = ['llms.txt', '.ipynb_checkpoints']
html_theme, html_title, html_favicon = 'furo', 'farmer', '_static/favicon.svg'
default_role = 'py:obj'  # `name` in a docstring links to its API entry when there is one
autodoc_member_order, autodoc_typehints = 'bysource', 'signature'
myst_enable_extensions = ['dollarmath', 'amsmath']
myst_heading_anchors = 3
nb_execution_mode = 'off'  # the committed outputs are the pages' outputs
nb_ipywidgets_js = {}  # no widget manager from a CDN: the one widget becomes a note (see `prepare`)
mathjax_path = 'mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full'  # relative to _static, copied by `copy_mathjax`
mathjax2_config = {  # the fonts that package ships (Jupyter's setting: STIX-Web only), and the elements MyST marks as math
    'HTML-CSS': {
        'availableFonts': [],
        'preferredFont': None,
        'webFont': 'STIX-Web',
        'imageFont': None,
        # v2 declares its blank fallback font as url('about:blank'), which today's browsers refuse with a console error
        'styles': {'@font-face': {'font-family': 'MathJax_Blank', 'src': "local('MathJax_Blank')"}},
    },
    'SVG': {'font': 'STIX-Web'},
    'tex2jax': {'processClass': 'tex2jax_process|mathjax_process|math|output_area'},  # MyST's classes, in v2's words
    'messageStyle': 'none',
}
suppress_warnings = ['mystnb.unknown_mime_type']


@cache  # read once per build: every page asks
def chapters() -> tuple[str, ...]:
    "The chapter notebooks in the README's order (their numbers)."
    return tuple(sorted(p.stem for p in NBS.glob('[0-9][0-9]_*.ipynb')))


PAPER_REFS = {  # chapter number -> where the paper has it (arXiv v2 numbering; "supplement": the CVPR 2026 supplement)
    '00': 'Table 1',
    '01': '§3, Fig. 2',
    '02': '§4.1, supplement Table 6',
    '04': 'eqs. 8–10',
    '05': 'eqs. 7, 11, Appendix A.2',
    '06': 'eqs. 11–14, Fig. 2',
    '07': 'eq. 14',
    '10': '§4.1',
    '12': '§4.1, supplement Table 6',
    '13': 'eq. 15, Algorithm 1, supplement §7',
    '15': 'Table 2',
    '16': '§3.5, Algorithm 2, Tables 4–5',
    '18': 'Table 1',
    '20': 'supplement Fig. 8',
    '21': 'paper Fig. 8, supplement Fig. 9',
    '22': 'supplement §7, Fig. 7',
    '23': 'Table 3, Fig. 6, §4.3',
    '24': '§3, Fig. 6',
}


def paper_refs() -> dict[str, str]:
    "Chapter number -> its paper reference ('' for our plumbing), for every chapter."
    return {nb[:2]: PAPER_REFS.get(nb[:2], '') for nb in chapters()}


@cache  # read once per build: every page asks
def parts() -> dict[str, tuple[str, ...]]:
    """The walkthrough's parts as the README lists them: {'Part I · The model': ('00_config', ...), ...}, read off the
    `### Part ...` headings of `index.ipynb` and the chapter links under each."""
    text = ''.join(''.join(c['source']) + '\n' for c in json.loads((NBS / 'index.ipynb').read_text())['cells'])
    out = {}
    for m in re.finditer(r'^### (Part [^\n]+)\n(.*?)(?=^#)', text + '\n#', re.M | re.S):
        out[m[1].strip()] = tuple(re.findall(r'\]\(nbs/(\d\d_\w+)\.ipynb\)', m[2]))
    if missing := set(chapters()) - {nb for p in out.values() for nb in p}:
        raise ValueError(f'chapters in no part of the README: {sorted(missing)}')
    return out


@cache  # read once per build: every page asks
def title(nb: str) -> str:
    "The chapter's title: the `# heading` its first cell starts with."
    first = ''.join(json.loads((NBS / f'{nb}.ipynb').read_text())['cells'][0]['source'])
    return first.splitlines()[0].lstrip('# ').strip()


def write_api_pages() -> None:
    "One page per exported module (`_api/farmer.<name>.md`, git-ignored), linked to the chapter that exports it."
    out = NBS / '_api'
    out.mkdir(exist_ok=True)
    mods = {}
    for nb in chapters():
        cells = json.loads((NBS / f'{nb}.ipynb').read_text())['cells']
        m = re.search(r'^#\| default_exp (\S+)', ''.join(''.join(c['source']) + '\n' for c in cells), re.M)
        if m:
            mods[m[1]] = nb
    for mod, nb in mods.items():
        (out / f'farmer.{mod}.md').write_text(
            f'# `farmer.{mod}`\n\nExported from chapter {nb[:2]}, [{title(nb)}](../{nb}.ipynb), which derives and tests it.\n\n'
            f'```{{eval-rst}}\n.. automodule:: farmer.{mod}\n   :members:\n```\n'
        )
    toc = '\n'.join(f'farmer.{m}' for m in mods)
    (out / 'index.md').write_text(
        '# API\n\nEvery name the `farmer` package exports, module by module, with the signatures and the shapes in the '
        f'docstrings.\n\n```{{toctree}}\n:maxdepth: 1\n\n{toc}\n```\n'
    )


def _code(src: str) -> str | None:
    "A code cell as the site shows it: nbdev's `#|` lines removed; None when the cell is hidden or only directives."
    lines = src.splitlines()
    if any(re.match(r'#\|\s*hide\b', l) for l in lines):
        return None
    kept = [l for l in lines if not l.startswith('#|')]
    return '\n'.join(kept).strip('\n') or None


def _md_cell(text: str) -> dict:
    "A markdown cell added for the site (its id derived from its text)."
    return dict(cell_type='markdown', id=f'site-{zlib.crc32(text.encode()):08x}', metadata={}, source=text)


def prepare(app, docname: str, source: list[str]) -> None:
    "Adapt a notebook's JSON for the site (Sphinx's source-read event): see the module docstring."
    if not (NBS / f'{docname}.ipynb').is_file():
        return
    nb = json.loads(source[0])
    nb['metadata'].pop('widgets', None)
    cells = []
    for c in nb['cells']:
        if c['cell_type'] == 'code':
            raw = ''.join(c['source'])
            src = _code(raw)
            if src is None:
                continue
            c['source'] = src
            if re.search(r'^#\|\s*echo:\s*false', raw, re.M):  # nbdev's "show the output only"
                c.setdefault('metadata', {}).setdefault('tags', []).append('remove-input')
            for o in c.get('outputs', []):
                if 'application/vnd.jupyter.widget-view+json' in o.get('data', {}):
                    o['data'] = {'text/markdown': '*An interactive widget: run this notebook in Jupyter to use it.*'}
        cells.append(c)
    refs = paper_refs()
    if docname == 'index':
        for c in cells:
            s = ''.join(c['source']) if c['cell_type'] == 'markdown' else ''
            s = re.sub(r'\]\(nbs/', '](', s)  # a chapter: its page
            s = re.sub(r'\]\((?!https?:|#|\d\d_|\.\./)', '](../', s)  # any other file of the repository, from nbs/
            if c['cell_type'] == 'markdown':
                c['source'] = s
        for part, nbs in parts().items():  # the sidebar: one caption per part, its chapters in the README's order
            toc = '\n'.join(f'{title(nb)} <{nb}>' for nb in nbs)
            cells.append(_md_cell(f'```{{toctree}}\n:hidden:\n:caption: {part}\n\n{toc}\n```'))
        cells.append(_md_cell('```{toctree}\n:hidden:\n:caption: Reference\n\n_api/index\n```'))
    elif docname[:2] in refs:  # under the title and its one-line description
        ref = refs[docname[:2]]
        line = (
            f'**In the paper:** {ref} ({PAPER}).' if ref else '**In the paper:** no section of its own (our plumbing).'
        )
        first = ''.join(cells[0]['source'])
        m = re.match(r'# [^\n]*\n+(> [^\n]*(\n>[^\n]*)*\n*)?', first)
        cells[0]['source'] = first[: m.end()] + line + '\n\n' + first[m.end() :]
    nb['cells'] = cells
    source[0] = json.dumps(nb)


def copy_mathjax(app, exc) -> None:
    "Serve MathJax from the site itself: the `static` folder of jupyter-server-mathjax into `_static/mathjax`."
    if exc is None and app.builder.format == 'html':
        src = Path(jupyter_server_mathjax.__file__).parent / 'static'
        shutil.copytree(src, Path(app.outdir) / '_static' / 'mathjax', dirs_exist_ok=True)


def setup(app):
    app.connect('source-read', prepare)
    app.connect('build-finished', copy_mathjax)


write_api_pages()

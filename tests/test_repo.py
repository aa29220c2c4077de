"The repository's own rules: README in sync with index.ipynb, CI runs the README's test command, small modules."

import ast, copy, json, re
import readme
from readme import ROOT, render, BLOCKS, block


def _fenced_commands(text: str) -> list[str]:
    return re.findall(r'```(?:bash|sh)\n(.*?)\n```', text, re.S)


def test_readme_is_rendered_from_index():
    assert (ROOT / 'README.md').read_text() == render(), (
        'README.md differs from nbs/index.ipynb: run `python tests/readme.py`'
    )


def test_readme_blocks_are_generated_from_the_measurements():
    "Each generated block, in the README (from the index) or on the results page, is what its JSON gives now."
    texts = {'index': (ROOT / 'README.md').read_text(), 'results': readme.notebook_text('results')}
    for start, end, make, target in BLOCKS:
        assert block(start, end, make, target) in texts[target], (
            f'the {target} block {start[:40]}... differs from the measurements: run `python tests/readme.py`'
        )


def test_results_chapter_shows_the_claims_of_figures_claims_json():
    "The committed output of the results chapter's claims cell is the table `claims_table` renders from figures/claims.json now."
    from farmer.analysis import claims_table

    cells = json.loads((ROOT / 'nbs' / '25_results.ipynb').read_text())['cells']
    out = next(c for c in cells if c['cell_type'] == 'code' and 'claims_table(' in ''.join(c['source']))['outputs']
    shown = ''.join(next(o['data']['text/markdown'] for o in out if 'text/markdown' in o.get('data', {})))
    assert shown == claims_table(ROOT / 'figures' / 'claims.json'), (
        'rerun nbs/25_results.ipynb (bash bench/analyses.sh)'
    )


def test_recorded_claims_follow_the_rule_and_every_readme_figure_exists():
    "Every recorded verdict is a known claim on a known dataset, and is what the one rule gives for its effects."
    from farmer.analysis import CLAIMS, CLAIM_COLUMNS, verdict

    d = json.loads((ROOT / 'figures' / 'claims.json').read_text())
    assert set(d) <= set(CLAIM_COLUMNS), set(d) - set(CLAIM_COLUMNS)
    for ds, claims in d.items():
        assert set(claims) <= set(CLAIMS), set(claims) - set(CLAIMS)
        for k, e in claims.items():
            if e['effects']:
                assert all(v['lo'] <= v['effect'] <= v['hi'] for v in e['effects'].values()), (ds, k)
                assert e['reproduces'] == verdict(list(e['effects'].values())), (ds, k)
            else:
                assert e['reproduces'] in ('yes', 'no'), (ds, k)  # exact checks only
    figs = re.findall(r'\((figures/[^)]+\.png)\)', (ROOT / 'README.md').read_text())
    assert all((ROOT / f).is_file() for f in figs), [f for f in figs if not (ROOT / f).is_file()]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / 'README.md').read_text()
    tests = [c for c in _fenced_commands(readme) if 'tests/check.sh' in c]
    assert len(tests) == 1, 'README must name exactly one test command (the one calling tests/check.sh)'
    assert tests[0].strip() in (ROOT / '.ci' / 'run').read_text()


def test_forks_get_ci():
    "The GitHub Actions workflow runs .ci/run (the README's test command) on pushes and pull requests."
    wf = (ROOT / '.github' / 'workflows' / 'tests.yml').read_text()
    on = re.search(r'^on:\n((?:  .*\n)+)', wf, re.M)
    assert on and {'push:', 'pull_request:'} <= {l.strip() for l in on.group(1).splitlines()}, (
        'tests.yml: on push and PR'
    )
    assert re.search(r'^\s+run: bash \.ci/run$', wf, re.M), 'tests.yml must run bash .ci/run'


def test_no_settings_ini():
    assert not (ROOT / 'settings.ini').exists(), 'nbdev 3 keeps its settings in pyproject.toml [tool.nbdev]'


def test_one_notebook_one_module_and_size_caps():
    for nb in sorted((ROOT / 'nbs').glob('[0-9][0-9]_*.ipynb')):
        cells = json.loads(nb.read_text())['cells']
        exp = [re.search(r'#\|\s*default_exp\s+(\S+)', ''.join(c['source'])) for c in cells if c['cell_type'] == 'code']
        exp = [m.group(1) for m in exp if m]
        if not exp:
            continue  # analysis notebooks export nothing
        assert exp == [nb.stem.split('_', 1)[1]], f'{nb.name} should export farmer/{nb.stem.split("_", 1)[1]}.py'
        first = ''.join(cells[0]['source'])
        assert re.match(r'# .+\n\n> .+', first), f'{nb.name} must open with an H1 title and a > summary'
    for py in (ROOT / 'farmer').glob('*.py'):
        if py.name == '_modidx.py':
            continue
        src = py.read_text()
        assert 'import *' not in src, f'{py.name} uses a star import'
        for node in ast.walk(ast.parse(src)):
            if (
                isinstance(node, (ast.FunctionDef, ast.ClassDef))
                and not node.name.startswith('_')
                and node.col_offset == 0
            ):
                assert ast.get_docstring(node), f'{py.name}: {node.name} has no docstring'


def test_no_reference_outside_the_repository():
    "A reader who clones the repository has the notebooks, the package and the README: nothing may point elsewhere."
    banned = re.compile(
        r'shared/|paper\.md|lessons\.md|anchors\.md|style\.md|farmer-dev\.github\.io|\[(?:INF|V2|SUPP)\b'
    )
    files = [
        *(ROOT / 'nbs').glob('*.ipynb'),
        ROOT / 'README.md',
        ROOT / 'pyproject.toml',
        *(ROOT / 'farmer').glob('*.py'),
        *(ROOT / 'bench').glob('*.py'),
        *(ROOT / 'experiments').glob('*.py'),
    ]
    hits = [f"{f.relative_to(ROOT)}: {m.group(0)!r}" for f in files for m in banned.finditer(f.read_text())]
    assert not hits, (
        'cite the paper (arXiv 2510.23588 v2 / the CVPR 2026 supplement), not notes a reader does not have: '
        + '; '.join(hits[:10])
    )


def test_methods_are_defined_on_their_class():
    "Every method of a farmer class names its class in tracebacks and help(): no `Cls.f = _f` assignments."
    import importlib, inspect, pkgutil, farmer

    bad = []
    for m in pkgutil.iter_modules(farmer.__path__):
        mod = importlib.import_module(f'farmer.{m.name}')
        for cname, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ != mod.__name__:
                continue
            for name, f in vars(cls).items():
                if name.startswith(('__', '_orig_')):
                    continue  # dunders; fastcore's @patch keeps the replaced method
                f = getattr(f, '__func__', f)
                if inspect.isfunction(f) and f.__qualname__ != f'{cname}.{name}' and f.__name__ != name:
                    bad.append(f'{cname}.{name} -> {f.__qualname__}')
    assert not bad, bad


def _chapter(py) -> str:
    "The notebook a module is exported from ('07_model' for farmer/model.py)."
    return re.search(r'File to edit: \.\./nbs/(\w+)\.ipynb', py.read_text()).group(1)


def test_chapters_build_front_to_back():
    """No module imports a module of a later chapter (so there is no cycle), and every farmer import sits at the top of its
    module, a script's `if __name__ == '__main__':` block included (`python -m farmer.train` runs the training chapter's
    own `farmer-train`)."""
    mods = {py.stem: py for py in (ROOT / 'farmer').glob('*.py') if py.stem not in ('_modidx', '__init__')}
    order = {m: _chapter(py) for m, py in mods.items()}
    assert all(order[m].split('_', 1)[1] == m for m in mods)
    bad = []
    for m, py in mods.items():
        tree = ast.parse(py.read_text())
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ''] if node.level == 0 else [(node.module or '')]
                names = [
                    n.removeprefix('farmer.') for n in names if node.level or n == 'farmer' or n.startswith('farmer.')
                ]
            elif isinstance(node, ast.Import):
                names = [
                    a.name.removeprefix('farmer.')
                    for a in node.names
                    if a.name == 'farmer' or a.name.startswith('farmer.')
                ]
            else:
                continue
            for n in names:
                if id(node) not in top:
                    bad.append(f'{m}: a farmer import inside a function or class ({n or "farmer"})')
                elif n in order and order[n] >= order[m]:
                    bad.append(f'{m} ({order[m]}) imports {n} ({order[n]}), a later chapter')
                elif n not in order:
                    bad.append(f'{m}: imports the package itself or an unknown module ({n!r})')
    assert not bad, bad


def test_readme_is_a_front_door():
    "At most 900 words and 60 numbers, no prose paragraph over 120 words: the rest belongs on the results page."
    stats = readme.front_door_stats((ROOT / 'README.md').read_text())
    assert stats['words'] <= 900 and stats['numbers'] <= 60 and stats['longest_paragraph'] <= 120, stats
    sections = re.findall(r'^## (.+)$', (ROOT / 'README.md').read_text(), re.M)
    order = ['Quick start', 'The walkthrough', 'Results', 'Paper scale', 'Developing', 'How to cite']
    assert sections == order, sections


def test_front_door_stats_count_what_a_reader_reads():
    "The counter behind the front-door test: link targets and comments are not read, a table is not a paragraph."
    text = 'One 1,797 and 3.509 [x](nbs/07_model.ipynb).\n\n<!-- 12 34 -->\n\n| a | 5 |\n\n```bash\nrun --n 8\n```\n'
    s = readme.front_door_stats(text)
    assert s == dict(words=15, numbers=4, longest_paragraph=5), s


def test_the_claim_at_B_picks_the_variant_on_validation_and_says_whether_the_target_is_met():
    "The README's sentence on the table at B: the FARMER row chosen by validation BPD (not test), and the 5% target."
    from readme import at_B_prose

    row = lambda val, mean, g: dict(
        val_bpd=[val],
        mean=mean,
        ci=[mean - 0.01, mean + 0.01],
        vs_af_pct=g,
        params=3_000_000,
        search={'x': dict(over=dict(lr=3e-3, steps=30_000, seed=0), val_bpd=val)},
    )
    af = row(3.5, 3.5, None)
    rows = lambda g: {
        'FARMER, no split': row(3.3, 3.2, g),
        'FARMER, token-8': row(3.4, 3.1, [9.0, 8.0, 10.0]),
        'AF alone': af,
    }
    assert at_B_prose({}) == ''  # before the table exists
    assert '(no split)' in at_B_prose(rows([6.0, 5.5, 6.5])) and 'is met' in at_B_prose(rows([6.0, 5.5, 6.5]))
    assert 'lower, by less than that' in at_B_prose(rows([3.0, 1.0, 5.0]))
    assert 'is not below the flow alone' in at_B_prose(rows([-2.0, -3.0, -1.0]))
    assert 'with 3.00M parameters' in at_B_prose(rows([-2.0, -3.0, -1.0]))  # the model size at which it was measured
    assert 'At B = 30,000 steps' in at_B_prose(rows([6.0, 5.5, 6.5]))
    r = rows([6.0, 5.5, 6.5])
    r['FARMER, no split']['vs_af_paired'] = dict(diff=-0.2, lo=-0.25, hi=-0.15, images=10_000, seeds=[1, 2])
    assert 'averaged over seeds 1, 2: -0.200 bits per dimension [-0.250, -0.150] over 10,000 test images' in at_B_prose(
        r
    )


def test_readme_sample_figure_follows_the_budget():
    "The README's sample grid and its caption are the budget-B model's once the sampling chapter has run at B."
    from readme import sample_figure

    short, at_B = sample_figure({'fashion-mnist': {}}), sample_figure({'fashion-mnist': {}, 'fashion-mnist-B': {}})
    assert '(figures/samples-fashion-mnist.png)' in short and '2,000 steps of 64 images, 2.3 passes' in short
    assert '(figures/samples-fashion-mnist-B.png)' in at_B and '30,000 steps of 64 images, 34.9 passes' in at_B


def test_the_split_paragraph_follows_the_measurements(monkeypatch):
    real = {n: readme._load(n) for n in ('split-variants.json', 'samples-over-training.json')}
    text = readme.split_prose()
    worse = copy.deepcopy(real)
    for k, e in worse['samples-over-training.json'].items():  # the paper's split at B twice as far from no split
        if k.startswith('pixel-8-seed'):
            for p in e['points'].values():
                p['fid'] *= 2
    monkeypatch.setattr(readme, '_load', lambda n: worse[n])
    moved = readme.split_prose()
    assert 'and misses it, the per-token GMM' in moved and 'the order stays' in moved and moved != text


LAYERS = {  # model <- training <- command line <- experiments: a module imports its own layer and those before it
    'model': {'config', 'data', 'imagenet', 'transformer', 'af', 'gmm', 'ar', 'model', 'budget'},
    'training': {'runtime', 'plots', 'loop', 'runs', 'train', 'sampling', 'classifier', 'eval', 'distill'},
    'command line': {'cli'},
}


def _farmer_imports(py) -> set[str]:
    "The farmer modules a file imports anywhere in it (relative imports of a farmer module included)."
    out = set()
    for node in ast.walk(ast.parse(py.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or '').startswith('farmer')):
            mod = (node.module or '').removeprefix('farmer').lstrip('.')
            out |= {mod.split('.')[0]} if mod else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name.split('.')[1] for a in node.names if a.name.startswith('farmer.')}
    return out - {'', '_modidx'}


def test_layers_hold():
    """The package's static import graph is layered (model <- training <- command line), so it has no cycle; the
    package imports nothing of `bench/`, `experiments/` or `tests/`, which sit on top of it."""
    mods = {py.stem: py for py in (ROOT / 'farmer').glob('*.py') if py.stem not in ('_modidx', '__init__')}
    rank = {m: i for i, ms in enumerate(LAYERS.values()) for m in ms}
    unplaced = sorted(set(mods) - set(rank) - {'analysis', 'ablations'})  # (the last two: experiment code, leaving)
    assert not unplaced, f'modules in no layer of LAYERS: {unplaced}'
    names = list(LAYERS)
    bad = [
        f'{m} ({names[rank[m]]}) imports {n} ({names[rank[n]]})'
        for m, py in mods.items()
        if m in rank
        for n in _farmer_imports(py)
        if n in rank and rank[n] > rank[m]
    ]
    assert not bad, bad
    graph = {m: _farmer_imports(py) & set(mods) for m, py in mods.items()}
    state: dict[str, int] = {}

    def cycle(m, path):  # depth-first: 1 on the path, 2 done
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path + [m, n]
            if n not in state and (c := cycle(n, path + [m])):
                return c
        state[m] = 2

    cycles = [c for m in sorted(mods) if m not in state and (c := cycle(m, []))]
    assert not cycles, f'a cycle in the import graph: {" -> ".join(cycles[0])}'
    outside = re.compile(r'^\s*(?:from|import)\s+(bench|experiments|tests|likelihood|readme)\b', re.M)
    leaks = [f'{py.name}: {m[1]}' for py in mods.values() for m in outside.finditer(py.read_text())]
    assert not leaks, f'the package imports experiment or test code: {leaks}'

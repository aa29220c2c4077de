"""README.md is rendered from nbs/index.ipynb (nbdev-readme needs Quarto, which is not available here).

`python tests/readme.py` rewrites README.md; `tests/test_repo.py` fails when the two disagree.
Markdown cells are copied as they are; code cells become ```python blocks; cells with `#| hide` are left out.
The blocks of the index between their markers (`BLOCKS`) are generated from the measurements: the headline table (from
figures/likelihood.json, written by `python bench/likelihood.py`, figures/samples.json, written by the sampling-knobs
chapter in FULL mode, and figures/train-throughput.json, written by `python bench/train_throughput.py`), the claims in
one line each (from figures/claims.json, written by the analysis chapters), the likelihood prose, the shipped models,
the GPU check and the split paragraph's numbers (figures/split-variants.json, samples-over-training.json);
`python tests/readme.py` refreshes them in nbs/index.ipynb first.
"""

import json, re, statistics
from scipy import stats
from pathlib import Path
from farmer.analysis import B_MODELS, B_STEPS, CLAIMS, best_farmer, meets_split_target
from farmer.runs import drop, first_above, lead_settled, record_seeds, worst_lift
from farmer.budget import budget
from farmer.config import preset

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {'digits': 'digits', 'fashion-mnist': 'Fashion-MNIST'}
BUDGET_COLUMNS = {'fashion-mnist-B': 'Fashion-MNIST at B'}  # claims measured at budget B (once they are)

HEADLINE_START = '<!-- headline: generated from figures/likelihood.json (likelihood-B.json once it exists), samples.json and train-throughput.json by `python tests/readme.py` -->'
HEADLINE_END = '<!-- end of headline -->'
CLAIMS_START = '<!-- claims in one line each: generated from figures/claims.json by `python tests/readme.py` -->'
CLAIMS_END = '<!-- end of claims -->'
PROSE_START = '<!-- likelihood prose: generated from figures/likelihood.json and likelihood-long.json by `python tests/readme.py` -->'
PROSE_END = '<!-- end of likelihood prose -->'
SHIPPED_START = '<!-- shipped models: generated from data/models.json and figures/samples-over-training.json by `python tests/readme.py` -->'
SHIPPED_END = '<!-- end of shipped models -->'
SPLIT_START = '<!-- split numbers: generated from figures/split-variants.json and samples-over-training.json by `python tests/readme.py` -->'
SPLIT_END = '<!-- end of split numbers -->'
GPU_START = '<!-- GPU check: generated from figures/gpu-check.json by `python tests/readme.py` -->'
GPU_END = '<!-- end of GPU check -->'
FRONT_START = '<!-- results: generated from figures/likelihood.json, likelihood-B.json and samples.json by `python tests/readme.py` -->'
FRONT_END = '<!-- end of results -->'


def _load(name: str) -> dict:
    p = ROOT / 'figures' / name
    return json.loads(p.read_text()) if p.is_file() else {}


LIKELIHOOD_ROWS = ('FARMER, no split', 'FARMER, split', 'factor-out')  # bench/likelihood.py's rows beside the AF alone
B_ROWS = ('FARMER, no split', 'FARMER, token-8')  # its rows at B (`--budget B`)


def headline() -> str:
    "The headline table: likelihood against the tuned AF, the samples of the sample-recipe model, training speed."
    lik, smp, at_B = _load('likelihood.json'), _load('samples.json'), _load('likelihood-B.json')
    comparable = lambda t: any(n.startswith('FARMER') for n in t) and 'AF alone' in t
    at_B = {ds: t for ds, t in at_B.items() if comparable(t)}  # the table at B once it has FARMER and the AF alone
    rows = {
        k: []
        for k in (
            'best FARMER, test BPD',
            'AF alone, test BPD',
            'FARMER against the AF',
            'samples: unguided FID / consistency',
            'samples: resampling CFG, FID / consistency',
            'FID of real training images against the test images (5 draws)',
        )
    }
    for ds in DATASETS:
        r = at_B.get(ds) or lik.get(ds, {})
        if comparable(r):
            name, best = best_farmer(r)
            steps = next(iter(best['search'].values()))['over'].get('steps', preset(ds).recipe.steps)
            when = f"at B = {steps:,} steps" if ds in at_B else f"{steps:,} steps"
            af, g = r['AF alone'], best['vs_af_pct']
            missing = [
                n for n in (B_ROWS if ds in at_B else LIKELIHOOD_ROWS) if n not in r
            ]  # the best of those run so far
            rows['best FARMER, test BPD'].append(
                f"{best['mean']:.3f} [{best['ci'][0]:.3f}, {best['ci'][1]:.3f}] ({name.removeprefix('FARMER, ')}, {when}"
                + (f"; not run yet: {', '.join(missing)})" if missing else ')')
            )
            rows['AF alone, test BPD'].append(f"{af['mean']:.3f} [{af['ci'][0]:.3f}, {af['ci'][1]:.3f}]")
            m = best['median_vs_af_pct']  # the median test image: robust to the few images a model finds very unlikely
            rows['FARMER against the AF'].append(f'{drop(g)}; median image {drop(m)}')
        else:
            for k in ('best FARMER, test BPD', 'AF alone, test BPD', 'FARMER against the AF'):
                rows[k].append('not measured')
        s = smp.get(f'{ds}-B') or smp.get(ds)  # the chapter model at budget B once the sampling chapter has run on it
        if s:
            m = lambda v: statistics.mean(v)
            rows['samples: unguided FID / consistency'].append(
                f"{m(s['none']['fid']):.1f} / {m(s['none']['consistency']):.2f} ({s['model']})"
            )
            rows['samples: resampling CFG, FID / consistency'].append(
                f"{m(s['resample']['fid']):.1f} / {m(s['resample']['consistency']):.2f} (w = {s['resample']['w']:g})"
            )
            rows['FID of real training images against the test images (5 draws)'].append(
                f"{m(s['real_fid']):.2f} ± {statistics.stdev(s['real_fid']):.2f}"
            )
        else:
            for k in list(rows)[3:]:
                rows[k].append('not measured')
    tp = _load('train-throughput.json')
    key = f"training speed on {tp.get('machine', {}).get('threads', 2)} CPU threads against {tp.get('against', 'the old code')}"
    rows[key] = []
    for ds in DATASETS:
        t, b = tp.get('throughput', {}).get(ds), tp.get('bpd', {}).get(ds)
        if not t:
            rows[key].append('not measured')
            continue
        r = lambda v: f"{t[v]['images_per_s']:.0f} images/s ({t[v]['images_per_s'] / t['old']['images_per_s']:.2f}×)"
        check = (
            f"; BPD after {b['steps']} steps, new − old: {b['new_minus_old']:+.3f} [{b['ci'][0]:+.3f}, {b['ci'][1]:+.3f}]"
            if b
            else ''
        )
        rows[key].append(f"{t['old']['images_per_s']:.0f} → {r('eager')}, compiled {r('compiled')}{check}")
    lines = ['| | ' + ' | '.join(DATASETS.values()) + ' |', '|---' * (len(DATASETS) + 1) + '|']
    return '\n'.join(lines + [f"| {k} | {' | '.join(v)} |" for k, v in rows.items()]) + '\n\n' + sample_figure(smp)


def sample_figure(smp: dict) -> str:
    "The chapter model's sample grid under the table: the one at budget B once the sampling chapter has run on it."
    # its key in samples.json, its figure's suffix; Fashion-MNIST's 60,000 training images, less validation
    column = 'fashion-mnist-B' if 'fashion-mnist-B' in smp else 'fashion-mnist'
    c = preset('fashion-mnist-samples')
    steps, train = B_STEPS if column.endswith('-B') else c.recipe.steps, 60_000 - c.val_images
    return (
        '![Fashion-MNIST samples of the chapter model (sample recipe, no split, model seed 0) under resampling CFG at the w '
        f"chosen on validation, one row per class, beside test images](figures/samples-{column}.png)\n\n"
        "Samples of the Fashion-MNIST chapter model (`fashion-mnist-samples`: the paper's Gaussian noise schedule, no split, "
        f"{steps:,} steps of {c.recipe.batch_size} images, {steps * c.recipe.batch_size / train:.1f} passes over the {train:,} training images) under resampling CFG, "
        "one row per class, beside test images; the sample rows above are its numbers over three model seeds (the "
        'sampling-knobs chapter, [`nbs/22_sampling_knobs.ipynb`](nbs/22_sampling_knobs.ipynb)).'
    )


def claims_lines() -> str:
    "One line per claim: its text and its verdict on each dataset."
    d = _load('claims.json')
    if not any(d.get(ds) for ds in DATASETS):
        return (
            '- not measured yet under this protocol: `bash bench/analyses.sh` runs the analysis chapters in FULL mode on '
            'both datasets and records every verdict. The verdicts of the earlier protocol (commit c9e1402: a seed-sd '
            'yardstick instead of intervals, Fashion-MNIST models on the likelihood recipe for under one epoch, whose '
            'samples were not garments) are kept for comparison in `figures/claims-c9e1402.json`; they are superseded.'
        )
    out = []
    for k in CLAIMS:
        e = next((d[ds][k] for ds in DATASETS if k in d.get(ds, {})), None)
        if e is None:
            continue
        cols = DATASETS | {ds: t for ds, t in BUDGET_COLUMNS.items() if d.get(ds)}
        absent = 'not decided yet (its table is still training)' if k == 'likelihood' else 'not measured'
        verdicts = '; '.join(
            f"{label}: **{d[ds][k]['reproduces']}**" if k in d.get(ds, {}) else f"{label}: {absent}"
            for ds, label in cols.items()
        )
        out.append(f"- {e['claim']}: {verdicts}")
    if missing := [k for k in CLAIMS if not any(k in d.get(ds, {}) for ds in DATASETS)]:
        out.append(
            f"- not measured yet under this protocol: {', '.join(missing)} (`bash bench/analyses.sh`; the ablation "
            'chapter records them). Their verdicts under the earlier protocol (commit c9e1402) are kept in '
            '`figures/claims-c9e1402.json`; they are superseded.'
        )
    return '\n'.join(out)


def likelihood_prose() -> str:
    "What the likelihood rows say, every number read from the benchmark's files (the 2,000-step table, then the long runs)."
    lik, long = _load('likelihood.json'), _load('likelihood-long.json')
    F, D = lik.get('fashion-mnist', {}), lik.get('digits', {})
    if 'AF alone' not in F or 'AF alone' not in D:
        return 'The likelihood rows are not measured yet: `python bench/likelihood.py` trains them.'
    side = lambda g: 'an interval that excludes zero' if g[1] > 0 or g[2] < 0 else 'an interval that holds zero'
    pct = lambda g: f'{g[0]:.1f}% below' if g[0] >= 0 else f'{-g[0]:.1f}% above'
    c = preset('fashion-mnist')
    passes = lambda steps: (
        steps * c.recipe.batch_size / (60_000 - c.val_images)
    )  # Fashion-MNIST: 60,000 training images
    record = _load('likelihood-runs.json')  # every finished run, by dataset
    runs = record.get('fashion-mnist', {})
    short = [
        r['summary']
        for k, r in runs.items()
        if r['summary'].get('steps') == c.recipe.steps and 'best_step' in r['summary']
    ]
    g, gs, go = (F[n]['vs_af_pct'] for n in ('FARMER, no split', 'FARMER, split', 'factor-out'))
    A = D['AF alone']  # what its worst test image adds to a seed's mean on digits
    lift = max(worst_lift(A['test_bpd'], A['test_max'], A['test_images']))
    # the recorded seed runs of row n's setting
    seeds = lambda n: record_seeds(record.get('digits', {}), D[n]['chosen'])
    f, af = seeds('FARMER, no split'), seeds('AF alone')
    lead = lead_settled(f, af) if f and af else dict(settled=False)
    text = [
        "The likelihood rows are `python bench/likelihood.py`'s table after "
        f"{c.recipe.steps:,} steps (the likelihood chapter, [`nbs/26_likelihood.ipynb`](nbs/26_likelihood.ipynb), has every row, the search "
        "and each seed). "
        + (
            "On digits the AF alone's wide interval comes from one test image that one of its three seeds finds "
            f"extremely unlikely ({max(A['test_max']):.0f} BPD), hence the second number: the median test image, which no "
            "single image can move."
            if lift > 0.1
            else f"The second number is the median test image, which no single image can move (on digits the worst test "
            f"image of any seed of the AF alone, {max(A['test_max']):.0f} BPD, lifts its seed's mean by {lift:.2f} bits)."
        )
        + (
            f" Digits needs no longer budget: the AF alone's validation BPD is lowest before its last step in "
            f"{lead['stopped']} of its {len(af)} seeds, and FARMER's best is lower "
            f"({lead['best'][0]:.3f} against {lead['best'][1]:.3f}), so FARMER leads a baseline that has stopped improving (the "
            "chapter's 'Digits: the same problem?')."
            if lead['settled']
            else ''
        )
        + f" On Fashion-MNIST at that budget FARMER without the split is {pct(g)} the "
        f"tuned AF alone ({side(g)}), so the target of 5% below the AF is "
        + ('met' if g[0] >= 5 and g[1] > 0 else f'missed by {5 - g[0]:.1f} points')
        + f"; the split row (d_I = {F['FARMER, split']['chosen']['d_I']}) is {pct(gs)} it and factor-out {pct(go)} it "
        + (
            f"(both {side(gs).replace('an interval that', 'intervals').replace('excludes', 'exclude').replace('holds', 'hold')})"
            if side(gs) == side(go)
            else f"({side(gs)} and {side(go)})"
        )
        + f". {sum(s['best_step'] == s['steps'] for s in short)} of the {len(short)} "
        f"Fashion-MNIST runs of that table were still learning when they stopped (their best validation step is their "
        f"last), so these rows compare the first {passes(c.recipe.steps):.1f} passes, not trained models."
    ]
    lf, la = (long.get('fashion-mnist', {}).get(n) for n in ('FARMER, no split', 'AF alone'))
    cmd = '`python bench/likelihood.py --budget long --datasets fashion-mnist`'
    if lf and la:
        p = 100 * (lf['test_bpd'] - la['test_bpd']) / la['test_bpd']
        pair = lf.get('vs_af_paired')
        flat = [n for n, r in (('FARMER', lf), ('the AF alone', la)) if r['flattened']]
        text.append(
            f"Trained for {lf['over']['steps']:,} steps instead ({passes(lf['over']['steps']):.0f} passes; {cmd}, seed 0 "
            f"of the settings that table chose), FARMER without the split reaches {lf['test_bpd']:.3f} test BPD and the AF "
            f"alone {la['test_bpd']:.3f}: FARMER is {abs(p):.1f}% {'above' if p > 0 else 'below'} the AF alone"
            + (
                f", image by image {pair['diff']:+.3f} bits per dimension [{pair['lo']:+.3f}, {pair['hi']:+.3f}] over the "
                f"{pair['images']:,} test images"
                if pair
                else ''
            )
            + '. '
            + (
                f"Only {' and '.join(flat)} flattened within the run"
                if flat
                else 'Neither validation curve has flattened by then (its last 20% still gains more than 0.01 bits)'
            )
            + f", so the budget B of the comparison is {max(lf['B'], la['B']):,} steps"
            + (
                '.'
                if 'AF alone' in _load('likelihood-B.json').get('fashion-mnist', {})
                else '; the search at B goes on.'
            )
        )
    elif lf:
        text.append(
            f"The training chapter follows the runs over {lf['over']['steps']:,} steps ({cmd}): FARMER without the split "
            f"reaches {lf['test_bpd']:.3f} test BPD there, still improving; the AF alone's long run is next."
        )
    text.append(at_B_prose(_load('likelihood-B.json').get('fashion-mnist', {})))
    text.append(screens_prose(_load('why-slower.json')))
    return ' '.join(t for t in text if t)


def at_B_prose(rows: dict) -> str:
    "The claim at B on Fashion-MNIST (`bench/likelihood.py --budget B`'s table), or nothing before that table exists."
    if 'AF alone' not in rows:  # the rows finished so far, while the AF alone's search goes on
        done = [
            f"{n} {r['mean']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] test BPD ({', '.join(f'{k}={v}' for k, v in r['chosen'].items())}, {len(r['test_bpd'])} seeds)"
            for n, r in rows.items()
        ]
        return f"Finished at B so far: {'; '.join(done)}." if done else ''
    name, best = best_farmer(rows)
    g, af, pair = best['vs_af_pct'], rows['AF alone'], best.get('vs_af_paired')
    steps = next(iter(best['search'].values()))['over']['steps']
    met = g[0] >= 5 and g[1] > 0
    missing = [n for n in B_ROWS if n not in rows]  # the claim is decided only once every row at B is finished
    verdict = (
        f"The target of 5% below the AF alone is not decided yet: {', '.join(missing)} is still to be trained at B, "
        'and the best FARMER variant may change with it.'
        if missing
        else 'The target of 5% below the AF alone is met.'
        if met
        else 'The target of 5% below the AF alone is missed: FARMER is lower, by less than that.'
        if g[1] > 0
        else 'The target of 5% below the AF alone is missed: ' + stops_paying(best, rows['AF alone'])
    )
    return (
        f"**At B = {steps:,} steps** (`python bench/likelihood.py --budget B --datasets fashion-mnist`: each row's "
        f"learning rate searched on validation at B until interior, three seeds), the best FARMER variant on validation "
        f"{'so far ' if missing else ''}({name.removeprefix('FARMER, ')}) reaches {best['mean']:.3f} [{best['ci'][0]:.3f}, {best['ci'][1]:.3f}] test BPD "
        f"and the AF alone {af['mean']:.3f} [{af['ci'][0]:.3f}, {af['ci'][1]:.3f}]: FARMER is {drop(g)} than the AF "
        + (
            f"(image by image, averaged over seeds {', '.join(map(str, pair['seeds']))}: {pair['diff']:+.3f} bits per "
            f"dimension [{pair['lo']:+.3f}, {pair['hi']:+.3f}] over {pair['images']:,} test images). "
            if pair
            else '. '
        )
        + verdict
    )


def stops_paying(best: dict, af: dict) -> str:
    "Where FARMER's prior stops paying on Fashion-MNIST: the evaluations of the two 30,000-step curves at which it leads."
    long = _load('likelihood-long.json')['fashion-mnist']
    vf, va = (dict(long[n]['curve']) for n in ('FARMER, no split', 'AF alone'))
    steps, lead = first_above(vf, va)  # FARMER leads the AF alone at steps[:lead]
    return (
        f"on Fashion-MNIST, with {best['params'] / 1e6:.2f}M parameters against the AF alone's {af['params'] / 1e6:.2f}M, "
        + (
            f"FARMER's prior pays only in the first {steps[lead - 1]:,} steps of a long run (below the AF alone on "
            f"validation there, above it at {sum(vf[s] > va[s] for s in steps[lead:])} of the {len(steps) - lead} "
            "evaluations after) and "
            if lead
            else ''
        )
        + "FARMER is not below the flow alone at either budget trained to its end (the likelihood chapter's verdict at B)."
    )


def screens_prose(why: dict) -> str:
    "The screens of `bench/why_slower.py`: the two parts of the gap, one change at a time (empty before the first screen)."
    if not why.get('screens'):
        return ''
    lo, s = why['late']['steps']  # the gaps averaged over the evaluations from lo to s (bench/why_slower.py's `late`)
    val = {k: r['val'] for k, r in why['late']['rows'].items()}
    widths = {
        'FARMER, no split (width 128, K=32)': '128, K = 32',
        'AF alone, width 128': '128, K = 1',
        'FARMER, width 152, K=8': '152, K = 8',
        'FARMER, width 152, K=32': '152, K = 32',
        'FARMER, no split, lr 2e-3': '128, K = 32 at lr 2e-3',
        'FARMER, no split, head lr x0.3': '128, K = 32 with the head at 0.3x lr',
        'FARMER, no split, head lr x0.1': '128, K = 32 with the head at 0.1x lr',
        'FARMER, no split, head lr x3': '128, K = 32 with the head at 3x lr',
        'FARMER, no split, head init 1': '128, K = 32 with the means started apart',
    }
    text = (
        f"Where the gap comes from (`python bench/why_slower.py`: one part changed at a time, seed 0, validation BPD "
        f"averaged over steps {lo:,.0f} to {s:,} of the same schedule, against the AF alone's flow width 152 and one Gaussian per token, K = 1): "
        + ', '.join(f"width {w} {val[k]:+.3f}" for k, w in widths.items() if k in val)
        + ' bits.'
    )
    f128, a128 = val.get('FARMER, no split (width 128, K=32)'), val.get('AF alone, width 128')
    if f128 is None or a128 is None:
        return text
    mix, width = f128 - a128, -a128  # at FARMER's flow: the mixture against one Gaussian; at one Gaussian: 128 -> 152
    carries = (
        'the prior, not the parameters it takes from the flow,' if abs(mix) > abs(width) else 'the flow it narrows'
    )
    use = [m for m in why.get('mixture', {}).values() if m['K'] > 1]  # python bench/why_slower.py --mixture
    used = (
        f" The mixture is in use, not collapsed: FARMER's AR spreads each token's prior weight over "
        f"{min(m['prior_components'] for m in use):.1f} to {max(m['prior_components'] for m in use):.1f} components."
        if use
        else ''
    )
    return (
        f"{text} At FARMER's flow, its mixture prior moves validation BPD by {mix:+.3f} bits against one Gaussian, and "
        f"widening the flow to the AF alone's moves it by {width:+.3f}: at this budget {carries} carries most of the gap "
        f"(one seed each).{used}"
    )


def shipped_prose() -> str:
    "The models shipped in data/, read from their manifest (and the long run's sample scores, where measured)."
    models = (
        json.loads((ROOT / 'data' / 'models.json').read_text()) if (ROOT / 'data' / 'models.json').is_file() else {}
    )
    if not models:
        return 'No model is shipped yet: `farmer.runs.export_pretrained` writes one from a finished run.'
    scored = [e for e in _load('samples-over-training.json').values() if 'test' in e]
    rows = []
    for name, r in models.items():  # the scores of the run it was exported from: its dataset and test BPD
        t = next((e['test'] for e in scored if e['dataset'] == name and e['test']['bpd'] == r['test_bpd']), None)
        rows.append(
            f"`{name}`: {r['about']}; test BPD {r['test_bpd']:.3f}"
            + (
                f", unguided FID {t['fid']:.1f} and class consistency {t['consistency']:.2f} on {t['n']:,} test samples"
                if t
                else ''
            )
            + f" ({r['bytes'] / 1e6:.1f} MB in {r['dtype']})"
        )
    return (
        '**No training: the shipped models.** `farmer-sample --pretrained fashion-mnist` (or `digits`) draws a class grid in '
        'seconds from weights that ship in `data/` with their config and SHA-256 (`farmer.runs.load_pretrained(name)` from '
        'Python): '
        + '; '.join(rows)
        + '. The test suite scores each again on its first test images and must find the recorded BPD to 0.001 bits.'
    )


SPLIT_NAMES = {'pixel-8': "the paper's split", 'token-8': "a redundant GMM per token (ours, `redundant='gmm-token'`)"}
NUMBER_WORDS = {1: 'one', 2: 'two', 3: 'three'}


def split_prose() -> str:
    """The split paragraph's numbers: the split variant closest to the no-split samples after 2,000 steps
    (`bench/split_variants.py`) and the split target at budget B (`bench/sample_models.py`, `bench/over_training.py`),
    computed as the split chapter computes them (validation FID: seed means; at B each run's last scored weights)."""
    res, ot = _load('split-variants.json'), _load('samples-over-training.json')
    val = lambda row, k: statistics.mean(
        r['none']['val_fid'] if k == 'fid' else r['val_bpd'] for r in res[row].values()
    )
    best = min((r for r in res if r != 'no-split'), key=lambda r: val(r, 'fid'))
    n_best, n_none = len(res[best]), len(res['no-split'])
    seeds = f"{NUMBER_WORDS[n_best]} seeds each" if n_best == n_none else f"{n_best} v {n_none} seeds"
    dbpd = val(best, 'bpd') - val('no-split', 'bpd')
    short = (
        f"{SPLIT_NAMES.get(best, f'`{best}`')} brings the same fixed-pixel split closest to the no-split samples, without "
        f"reaching them (unguided validation FID {val(best, 'fid'):.1f} against {val('no-split', 'fid'):.1f}, "
        f"{val(best, 'fid') / val('no-split', 'fid'):.2f}×, {seeds}, with a validation BPD {abs(dbpd):.3f} bits "
        f"{'better' if dbpd < 0 else 'worse'}; the paper's split: {val('pixel-8', 'fid'):.1f})."
    )
    runs = {
        row: [ot[k] for s in seeds_ if 'test' in ot.get(k := f'{row}-seed{s}', {})]
        for row, (_, seeds_) in B_MODELS.items()
    }
    last = lambda e: e['points'][max(e['points'], key=int)]
    at = lambda row, k: statistics.mean(last(e)[k] for e in runs[row])
    test = lambda row: statistics.mean(e['test']['fid'] for e in runs[row])
    ratio = {row: at(row, 'fid') / at('no-split', 'fid') for row in ('pixel-8', 'token-8')}
    met = {row: meets_split_target(ratio[row], at(row, 'val_bpd') - at('no-split', 'val_bpd')) for row in ratio}
    turns = (ratio['pixel-8'] < ratio['token-8']) != (val('pixel-8', 'fid') < val('token-8', 'fid'))
    split_seeds = {len(runs['pixel-8']), len(runs['token-8'])}
    split_n = f"{NUMBER_WORDS[split_seeds.pop()]} seeds" if len(split_seeds) == 1 else 'two or three seeds'
    verdict = lambda row: 'meets the split target' if met[row] else 'misses it'
    return short + (
        f" Trained for the budget B of the likelihood comparison ({B_STEPS:,} steps; {split_n} of each split, "
        f"{NUMBER_WORDS[len(runs['no-split'])]} without) the order "
        f"{'turns' if turns else 'stays'}: the paper's split ends at {ratio['pixel-8']:.2f}× the no-split validation FID "
        f"and {verdict('pixel-8')}, the per-token GMM ends at {ratio['token-8']:.2f}× and {verdict('token-8')} (test FID "
        f"{test('no-split'):.2f} without the split, {test('pixel-8'):.2f} with the paper's, {test('token-8'):.2f} with a GMM "
        f"per token; the split chapter's last section)."
    )


def gpu_prose() -> str:
    "What one GPU showed (figures/gpu-check.json, from bench/gpu_check.py on a lent machine), or that none has run it."
    g = _load('gpu-check.json')
    cmd = '`python bench/gpu_check.py --data-root DIR --out figures/gpu-check.json`'
    if not g:
        return f'**Verified only on CPU.** No GPU has run the CUDA path yet; {cmd} checks it in about 4 minutes.'
    b, mem, sp, tr, af = g['bf16'], {m['preset']: m for m in g['memory']}, g['speed'], g['torchrun'], g['af_inverse']
    comp = {m['preset']: m for m in g.get('compile', []) if 'compiled_tflops' in m}
    f32, f32_as_bf16, bf16 = b['fp32'], b['fp32_trained_scored_bf16'], b['bf16']
    pred = lambda m: budget(preset(m['preset']).replace(batch_size=m['batch_per_gpu']), gpus=1)['memory_gib']
    m11, m19, m64, c11 = (
        mem['imagenet256-1.1b'],
        mem['imagenet256-1.9b'],
        mem['imagenet64-556m'],
        comp['imagenet256-1.1b'],
    )
    return (
        f"**Checked on a GPU.** Training, evaluation and every analysis here ran on a 2-core CPU. The CUDA path ran "
        f"on one {g['device'].split(',')[0]} with torch {g['torch'].split(' ')[0]}, through {cmd} (about 3 minutes; its "
        f"`--smoke` version runs in CI). It found two faults, both fixed: every CUDA training run stopped at its first step, "
        f"and held-out BPD was scored under bf16 autocast, which read the same weights {f32_as_bf16[0] - f32[0]:+.3f} bits "
        f"high ({f32[0]:.3f} in fp32, Fashion-MNIST after {b['steps']} steps), so BPD is now always scored in fp32. Training "
        f"itself under bf16 moved validation BPD by {b['diff']:+.3f} ({len(f32)} seeds), inside the fp32 runs' seed spread of "
        f"{b['fp32_seed_spread']:.3f}. The 1.1B model's AF inverts at full size to {af['fp32']['max_abs_error']:.1e} in fp32 "
        f"({af['fp64']['max_abs_error']:.0e} in fp64) from random weights 0.01 from the identity. Peak memory per GPU at 32 "
        f"images, bf16, eager: 1.1B {m11['peak_gib']:.1f} GiB (the budget chapter's model, fitted to these peaks at 32 and "
        f"16 images, predicts {pred(m11):.1f}), 1.9B {m19['peak_gib']:.1f} ({pred(m19):.1f}), ImageNet-64 556M "
        f"{m64['peak_gib']:.1f} ({pred(m64):.1f}): eager, the 1.1B model fits an 80 GB GPU with little to spare and the 1.9B "
        f"model needs a larger one (or 16 GPUs); `--compile` cut the 1.1B peak to {c11['compiled_peak_gib']:.1f} GiB. The 1.1B "
        f"steps sustained {m11['tflops']:.0f} TFLOP/s eager and {c11['compiled_tflops']:.0f} compiled (x{c11['speedup']:.2f}, "
        f"after {c11['compile_s']:.0f} s of compiling): "
        f"{m11['gpu_hours_320_epochs'] * m11['tflops'] / c11['compiled_tflops']:,.0f} GPU-hours for the paper's 320 epochs "
        f"(the budget's 400 TFLOP/s assumption gives {m11['gpu_hours_320_epochs'] * m11['tflops'] / 400:,.0f}). "
        f"Fashion-MNIST trains at {sp['train_images_per_s']:,.0f} images/s "
        f"and samples at {sp['sample_images_per_s']:,.0f}; under `torchrun` (one process, NCCL, `--compile`) 1,000 steps took "
        f"{tr['wall_s']:.0f} s, and `farmer-sample --pretrained fashion-mnist --device cuda` draws with resampling CFG."
    )


def front_results() -> str:
    """The README's one results table: FARMER against the AF alone on both datasets (test BPD, mean and 95% t-interval
    over three seeds; the gain with Welch's interval) and the Fashion-MNIST chapter model's unguided FID over its seeds."""
    lik, at_B, smp = _load('likelihood.json'), _load('likelihood-B.json'), _load('samples.json')
    ci = lambda r: f"{r['mean']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"
    rows = {'FARMER': [], 'AF alone (FARMER with K = 1)': [], 'FARMER against the AF alone': []}
    for ds in DATASETS:
        t = at_B.get(ds) if 'AF alone' in at_B.get(ds, {}) else lik.get(ds, {})
        if 'AF alone' not in t:
            for v in rows.values():
                v.append('not measured')
            continue
        name, best = best_farmer(t)
        steps = next(iter(best['search'].values()))['over'].get('steps', preset(ds).recipe.steps)
        rows['FARMER'].append(f"{ci(best)} ({name.removeprefix('FARMER, ')}, {steps:,} steps)")
        rows['AF alone (FARMER with K = 1)'].append(ci(t['AF alone']))
        rows['FARMER against the AF alone'].append(drop(best['vs_af_pct']))
    s = smp.get('fashion-mnist-B') or smp.get('fashion-mnist')
    fid = 'not measured'
    if s:
        v = s['none']['fid']
        m, h = statistics.mean(v), statistics.stdev(v) / len(v) ** 0.5 * stats.t.ppf(0.975, len(v) - 1)
        fid = f'{m:.1f} [{m - h:.1f}, {m + h:.1f}] ({len(v)} seeds)'
    lines = [
        '| test BPD (lower is better) | ' + ' | '.join(DATASETS.values()) + ' |',
        '|---' * (len(DATASETS) + 1) + '|',
        *(f"| {k} | {' | '.join(v)} |" for k, v in rows.items()),
    ]
    return (
        '\n'.join(lines)
        + f"\n\nThe Fashion-MNIST chapter model's unguided FID: {fid}. Digits (17 intensity levels, scored "
        f'as 256) favour a mixture. On Fashion-MNIST a mixture trained from scratch loses{warm_start_clause()}. '
        'Everything else: the [results page](nbs/25_results.ipynb).'
    )


def warm_start_clause() -> str:
    "What the warm start (figures/warm-start.json, `python -m experiments run warm_start`) adds, if it has a seed."
    w = _load('warm-start.json')
    if not w.get('per_seed'):
        return ''
    runs = _load('warm-start-runs.json')
    pct = [100 * d['test'] / runs[f'k1-s{s}']['summary']['test_bpd'] for s, d in w['per_seed'].items()]
    n = len(pct)
    return (
        f'; started from the single Gaussian it ends {-statistics.mean(pct):.1f}% lower in test BPD '
        f"({NUMBER_WORDS.get(n, n)} seed{'s' if n > 1 else ''} so far; the likelihood chapter)"
    )


BLOCKS = (  # (start, end, what writes it, the notebook it lives in)
    (FRONT_START, FRONT_END, front_results, 'index'),
    (HEADLINE_START, HEADLINE_END, headline, 'results'),
    (SHIPPED_START, SHIPPED_END, shipped_prose, 'results'),
    (GPU_START, GPU_END, gpu_prose, 'results'),
    (SPLIT_START, SPLIT_END, split_prose, 'results'),
    (PROSE_START, PROSE_END, likelihood_prose, 'results'),
    (CLAIMS_START, CLAIMS_END, claims_lines, 'results'),
)
TARGETS = {'index': ROOT / 'nbs' / 'index.ipynb', 'results': ROOT / 'nbs' / '25_results.ipynb'}


INLINE = (SPLIT_START,)  # blocks inside a paragraph: their markers sit on the text's line (HTML comments, not shown)


def block(start: str, end: str, make, target: str = 'index') -> str:
    "A generated block as it stands in its notebook (the results page is under nbs/: its links are relative to it)."
    sep, text = '' if start in INLINE else '\n', make()
    if target != 'index':
        text = text.replace('](nbs/', '](').replace('](figures/', '](../figures/')
    return f"{start}{sep}{text}{sep}{end}"


def refresh() -> None:
    "Rewrite the generated blocks of the index notebook's and the results page's markdown."
    for target, nb_path in TARGETS.items():
        nb = json.loads(nb_path.read_text())
        for start, end, make, where in BLOCKS:
            for c in nb['cells'] if where == target else ():
                src = ''.join(c['source'])
                if c['cell_type'] == 'markdown' and start in src:
                    head, rest = src.split(start, 1)
                    c['source'] = (head + block(start, end, make, where) + rest.split(end, 1)[1]).splitlines(True)
        nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')


def notebook_text(target: str) -> str:
    "The markdown of a target notebook, cells joined."
    cells = json.loads(TARGETS[target].read_text())['cells']
    return '\n\n'.join(''.join(c['source']) for c in cells if c['cell_type'] == 'markdown')


def front_door_stats(text: str) -> dict:
    """What a reader of the README meets: words (whitespace-separated, HTML comments left out), numbers (digit runs as a
    reader reads them, `1,797` or `3.509` one number, in prose, tables and commands; link and image targets left out)
    and the longest prose paragraph in words (tables, code and headings are not paragraphs)."""
    text = re.sub(r'<!--.*?-->', '', text, flags=re.S)
    seen = re.sub(r'\]\([^)]*\)', ']', text)  # link and image targets are not read
    numbers = re.findall(r'(?<![\w.])\d+(?:[.,]\d+)*', seen)
    prose = re.sub(r'```.*?```', '', seen, flags=re.S)
    paragraphs = [p for p in re.split(r'\n\s*\n', prose) if p.strip() and not p.lstrip().startswith(('|', '#', '!['))]
    return dict(
        words=len(text.split()), numbers=len(numbers), longest_paragraph=max(len(p.split()) for p in paragraphs)
    )


def render(nb_path: Path = ROOT / 'nbs' / 'index.ipynb') -> str:
    parts = []
    for c in json.loads(nb_path.read_text())['cells']:
        src = ''.join(c['source']).strip('\n')
        if c['cell_type'] == 'markdown':
            parts.append(src)
        elif not any(l.strip() in ('#| hide', '#|hide') for l in src.splitlines()):
            parts.append(f'```python\n{src}\n```')
    return '\n\n'.join(parts) + '\n'


if __name__ == '__main__':
    refresh()
    (ROOT / 'README.md').write_text(render())
    print('README.md written from nbs/index.ipynb;', front_door_stats(render()))

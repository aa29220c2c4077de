"""Test-split likelihood of FARMER against the flow it extends, every model tuned the same way on validation.

For each dataset, four models on the dataset's likelihood preset (same data, steps, recipe):

- FARMER without the split (every latent token gets its own K_I-component GMM),
- FARMER with the split (d_I informative channels per token, one shared redundant GMM),
- JetFormer's factor-out (the same split, with z_R ~ N(0, I) instead of the shared GMM),
- the AF alone (`K_I=1, d_I=None`: one diagonal Gaussian per latent token from the causal AR, i.e. a TARFlow-style flow
  with one more autoregressive affine block, paper Appendix A.1).

Every model gets the same search on the validation split: the learning rate over `LRS` (seed 0), the grid extended one
value at a time (x1.5 or /1.5, `lr_search`) beyond whichever edge its best value sits at until that value is interior;
the AF alone also its width, over two widths whose parameter counts bracket the largest FARMER's within 10%. The
setting with the best validation BPD is then trained with seeds 1 and 2 as well, and the table reports the test BPD of
the three seeds: mean and 95% t-interval, and each FARMER row's gain over the AF alone with Welch's interval
(`farmer.analysis.effect`). Each seed's test score also gives the median and the worst test image (`summary.json`),
since a mean BPD can rest on a few images the model finds very unlikely.
Runs go to `runs/likelihood/<dataset>/<row>` and are resumed when cut short; each finished run's config and summary are
added to `figures/likelihood-runs.json` (the record, committed), and a run the record holds with the same config is not
trained again: the benchmark takes longer than one sitting, and the record carries it over without the checkpoints
(delete the record to retrain everything). The table goes to `figures/likelihood.json`, which the likelihood chapter and
the README quote.

    python bench/likelihood.py [--datasets digits,fashion-mnist] [--data-root DIR]
    python bench/likelihood.py --budget long --datasets fashion-mnist [--models "FARMER, no split"]

`--budget long` is the first stage of the likelihood claim at a budget the models have finished learning in: FARMER
without the split and the AF alone, each with the setting the 2,000-step table chose on validation (seed 0; a row
already in `figures/likelihood-long.json` keeps the setting it was trained with), trained for `LONG_STEPS` steps with an
evaluation every 1,000; their validation curves and training-log terms go to the record, and the budget B where each
curve flattens to `figures/likelihood-long.json` (the likelihood chapter plots them). Once both runs are on disk, their
best weights score every test image again with the same noise per image, and the mean per-image difference FARMER - AF
with its interval over images goes beside them (`vs_af_paired`).

`--budget B` is the second stage, the table at B (`B_STEPS`; stage 1 found that neither curve flattens by 30,000 steps):
FARMER without the split, its best split variant on validation (the per-token redundant GMM, `token-8`) and the AF alone,
each with the learning rate searched on validation at B (seed 0) over `B_LRS`, the grid extended one value at a time
(x1.5 or /1.5) beyond whichever edge its best value sits at until that value is interior, then seeds 1 and 2 of the
chosen setting. The AF alone's rate is searched at its wider width (the 2,000-step choice); the other width is tried at
the rate chosen there and searched too only if it wins (`arch_search`: two runs of two hours saved when it does not).
The rows (the format of the 2,000-step table, with each FARMER row's test BPD against the AF alone over seeds and image
by image) go to `figures/likelihood-B.json`. Once a table at a budget has every row, its verdict on the claim "FARMER beats
the AF alone in held-out likelihood" goes to `claims.json` beside it (`likelihood_claim`, the one rule of the analysis
chapters; at B its column is `fashion-mnist-B`). The image-by-image comparison cannot wait for
the weights (a run directory does not outlive its sitting): each run at B keeps the BPD of every test image in
`figures/likelihood-B-images.safetensors` (float32, 40 KB a run), and a FARMER row meets the AF alone on the seeds both
have there, each image's difference averaged over those seeds. One such run takes about two hours
here: `--max-new-runs N` stops after N runs trained now (the record keeps them; run again to go on).
    python bench/likelihood.py --budget B --datasets fashion-mnist --runs runs/likelihood-long --max-new-runs 1
    python bench/likelihood.py --datasets digits --steps 3 --runs /tmp/l --out /tmp/l.json   # a smoke run (the tests)

Fashion-MNIST needs its four IDX files under DATA_ROOT/FashionMNIST/raw/ (`farmer-train --preset fashion-mnist
--download` fetches them) or `--data-root`/$FARMER_DATA pointing at a copy.
"""

import argparse, functools, json, statistics, sys, types
import torch
from pathlib import Path
from safetensors.torch import load_file
from farmer.runtime import save_checkpoint
from farmer.config import FarmerConfig, preset
from farmer.data import ImageSet
from farmer.model import param_counts

# B_STEPS: B on Fashion-MNIST (neither long curve flattened)
from farmer.analysis import B_STEPS, best_farmer, effect, record_claim
from farmer.train import ensure_run
from farmer.runtime import config_diff, pick_device
from farmer.runs import drop, heldout_bpds, load_run_model, run_splits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: experiments/
from experiments.records import learning_curve  # noqa: E402

LRS = (1e-3, 2e-3, 3e-3)
B_LRS = (2e-3, 3e-3, 4.5e-3)  # the 2,000-step search chose 3e-3, the edge of LRS: at B the grid starts around it
LR_STEP, LR_RANGE = 1.5, (1e-4, 2e-2)  # a grid grows by this factor beyond the edge its best sits at, within this range
LONG_STEPS = 30_000  # the longest budget: B is looked for inside it
LONG_ROWS = ('FARMER, no split', 'AF alone')
SEEDS = (0, 1, 2)
SPLIT = {'digits': 2, 'fashion-mnist': 8}  # d_I of the split rows
AF_WIDTHS = {'digits': (120, 136), 'fashion-mnist': (136, 152)}
MODELS = {
    'FARMER, no split': lambda ds: [dict(d_I=None)],
    'FARMER, split': lambda ds: [dict(d_I=SPLIT[ds])],
    'factor-out': lambda ds: [dict(d_I=SPLIT[ds], redundant='normal')],
    'AF alone': lambda ds: [dict(K_I=1, d_I=None, af_width=w) for w in AF_WIDTHS[ds]],
}
B_IMAGES = 'likelihood-B-images.safetensors'  # beside the record: every run's per-image test BPDs at B
B_ROWS = {  # the table at B: no split, the split variant with the best validation BPD (split chapter), the AF alone
    'FARMER, no split': MODELS['FARMER, no split'],
    'FARMER, token-8': lambda ds: [dict(d_I=SPLIT[ds], redundant='gmm-token')],
    # the AF alone's wider width first: the 2,000-step table's choice on both datasets, whose rate `arch_search` searches
    'AF alone': lambda ds: MODELS['AF alone'](ds)[::-1],
}
NEW_RUNS = dict(left=None)  # how many more runs this invocation may train (None: no limit)


class OutOfRuns(Exception):
    "This invocation has trained the runs it was allowed (`--max-new-runs`)."


def slug(over: dict) -> str:
    return '_'.join(f'{k}={v}' for k, v in over.items())


def model_row(
    ds: str,
    name: str,
    data_root: str | None,
    root: Path = Path('runs/likelihood'),
    steps=None,
    record: Path | None = None,
    at_B: bool = False,
) -> dict:
    """Search on validation (the learning-rate grid grown until its best value is interior), then three seeds of the
    chosen setting; return the row. `steps`: a smoke run of that many steps. `at_B`: the rows of `B_ROWS` trained
    `B_STEPS` steps (or `steps`) from the grid `B_LRS`, a later width tried at the best rate first (`arch_search`)."""
    runs_dir = root / ds
    short = dict(steps=steps, eval_every=steps, warmup=0) if steps else {}
    length = dict(steps=steps or B_STEPS) if at_B else {}  # named in the run's directory: not the 2,000-step runs
    images = record.with_name(B_IMAGES) if at_B and record else None
    train = lambda over: recorded_run(
        preset(ds, **{**over, **short}), runs_dir / slug(over), record, data_root, images, compile=not steps
    )

    def val_bpd(arch: dict, lr: float) -> float:
        over = dict(arch, lr=lr, **length, seed=0)
        s = train(over)
        search[slug(over)] = dict(over=over, val_bpd=s['best_val_bpd'])
        print(
            f"  {ds:14s} {name:16s} {slug(over):50s} val BPD {s['best_val_bpd']:.4f}  ({s['wall_s']:.0f} s)", flush=True
        )
        return s['best_val_bpd']

    search = {}
    arch_search(val_bpd, (B_ROWS if at_B else MODELS)[name](ds), B_LRS if at_B else LRS, grow=True, screen=at_B)
    best = min(search.values(), key=lambda r: r['val_bpd'])['over']
    runs = [train(dict(best, seed=s)) for s in SEEDS]
    tests = [r['test_bpd'] for r in runs]
    return dict(
        chosen={k: v for k, v in best.items() if k not in ('seed', 'steps')},
        params=param_counts(preset(ds, **best))['total'],
        search=search,
        val_bpd=[r['best_val_bpd'] for r in runs],
        test_bpd=tests,
        mean=statistics.mean(tests),
        ci=_mean_ci(tests),
        test_median=[r['test_bpd_median'] for r in runs],
        test_max=[r['test_bpd_max'] for r in runs],
        test_images=len(run_splits(preset(ds, **best), data_root)['test']),
        wall_s=[r['wall_s'] for r in runs],
    )


def lr_search(val_bpd, grid, grow: bool = False) -> dict[float, float]:
    """{learning rate: validation BPD} over `grid` (`val_bpd(lr)` trains or reads one run); `grow`: while the best value is
    at an edge of the grid, one more value beyond it (x or / `LR_STEP`, within `LR_RANGE`), so the choice ends interior."""
    grid, seen = sorted(grid), {}
    while True:
        for lr in grid:
            if lr not in seen:
                seen[lr] = val_bpd(lr)
        best = min(grid, key=seen.get)
        nxt = best * LR_STEP if best == grid[-1] else best / LR_STEP if best == grid[0] else None
        if not grow or nxt is None or not LR_RANGE[0] <= nxt <= LR_RANGE[1]:
            return seen
        grid = sorted(grid + [float(f'{nxt:.3g}')])


def arch_search(val_bpd, archs: list[dict], grid, grow: bool = False, screen: bool = False) -> dict:
    """{(index in `archs`, learning rate): validation BPD} of the search (`val_bpd(arch, lr)` trains or reads one run):
    each architecture's learning rate over `grid` (`lr_search`, growing it if `grow`). `screen` (at B, where a run takes
    two hours): an architecture after the first is tried at the best learning rate so far, and its rate searched only if
    it beats the best there."""
    seen = {}

    def one(i: int, arch: dict, lr: float) -> float:
        if (i, lr) not in seen:
            seen[i, lr] = val_bpd(arch, lr)
        return seen[i, lr]

    for i, arch in enumerate(archs):
        if screen and i:
            (_, lr), top = min(seen.items(), key=lambda kv: kv[1])
            if one(i, arch, lr) >= top:
                continue
        lr_search(functools.partial(one, i, arch), grid, grow)
    return seen


def recorded_run(
    cfg: FarmerConfig, out: Path, record: Path | None, data_root: str | None, images: Path | None = None, **train_kw
) -> dict:
    """The summary of run `out` trained with `cfg`: from `record` (`{dataset: {run name: {config, summary}}}`) when it holds
    this run with this config, else from `ensure_run` (reused, resumed or trained now) and then added to the record.
    `images`: also keep the run's per-image test BPDs there (`keep_test_bpds`)."""
    read = lambda: json.loads(record.read_text()) if record and record.is_file() else {}
    r = read().get(cfg.dataset, {}).get(out.name)
    have = FarmerConfig.from_dict(r['config']).to_dict() if r else None  # a field added since has its default
    if r and not config_diff(have, cfg.to_dict()) and ('curve' in r['summary'] or not out.is_dir()):
        if images:
            keep_test_bpds(images, cfg, out, r['summary'], data_root)
        return r['summary']
    if NEW_RUNS['left'] is not None and not (out / 'summary.json').is_file():  # a run to train (or finish) now
        if NEW_RUNS['left'] <= 0:
            raise OutOfRuns
        NEW_RUNS['left'] -= 1
    s = ensure_run(cfg, out, progress=False, data_root=data_root, **train_kw)
    if 'test_bpd_median' not in s:  # a run finished before `summary.json` held its median and worst test image
        v = test_bpds(out, run_splits(cfg, data_root)['test'])
        s = dict(s, test_bpd_median=v.median().item(), test_bpd_max=v.max().item())
    s = dict(s, **learning_curve(out / 'metrics.jsonl'))
    if record:
        runs = read()  # re-read: another process may have added runs
        runs.setdefault(cfg.dataset, {})[out.name] = dict(config=cfg.to_dict(), summary=s)
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(record.name + '.tmp')
        tmp.write_text(json.dumps(runs, indent=1))
        tmp.replace(record)
    if images:
        keep_test_bpds(images, cfg, out, s, data_root)
    return s


def keep_test_bpds(images: Path, cfg: FarmerConfig, out: Path, summary: dict, data_root) -> None:
    """Add run `out`'s per-image test BPDs `[N]` to the safetensors file `images` (key `<dataset>/<run name>`), from the
    run's `test_bpds.safetensors` or, for a run finished before that file existed, by scoring its best weights again; a
    run already kept, or whose directory is gone, is left as it is. Their mean must be the run's recorded test BPD."""
    kept = load_file(images) if images.is_file() else {}
    key = f'{cfg.dataset}/{out.name}'
    if key in kept or not (out / 'best.safetensors').is_file():
        return
    f = out / 'test_bpds.safetensors'
    v = load_file(f)['bpd'] if f.is_file() else test_bpds(out, run_splits(cfg, data_root)['test'])
    if abs(v.mean().item() - summary['test_bpd']) > 1e-4:
        raise RuntimeError(f"{out}: its test images score {v.mean().item():.5f}, its summary {summary['test_bpd']:.5f}")
    images.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        images, kept | {key: v.float()}, dict(about='per-image test BPD of each run at B (bench/likelihood.py)')
    )


def budget(curve: list[list[float]], tol: float = 0.01, tail: float = 0.2) -> dict:
    """B of one validation curve `[[step, bpd], ...]`: the run has flattened when its last `tail` (20%) improved validation
    BPD by less than `tol` bits; then B is the first evaluated step within `tol` of the final BPD, else the run's length."""
    T, final = curve[-1]
    before = [v for s, v in curve if s <= (1 - tail) * T][-1]
    flat = before - final < tol
    return dict(B=min(s for s, v in curve if v - final < tol) if flat else T, flattened=flat, tail_gain=before - final)


def convergence(
    ds: str, names: list[str], data_root, root: Path, record: Path, short: dict, steps=None, kept: dict | None = None
) -> dict:
    """The long runs of `names` (the settings `short`, the 2,000-step table, chose; seed 0): their curves, test BPD and B.
    A row already in `kept` (the long table) keeps the setting it was trained with, whatever the short table chooses now."""
    rows = {}
    for name in names:
        smoke = dict(steps=steps, eval_every=steps, warmup=0) if steps else dict(steps=LONG_STEPS)
        over = (kept or {}).get(name, {}).get('over') or dict(short[name]['chosen'], **smoke, seed=0)
        cfg = preset(ds, **over)
        s = recorded_run(cfg, root / ds / slug(over), record, data_root=data_root, compile=not steps)
        keep = ('curve', 'terms', 'train_tail', 'best_step', 'best_val_bpd', 'test_bpd', 'train_s')
        rows[name] = dict(
            over=over, batch_size=cfg.recipe.batch_size, **{k: s.get(k) for k in keep}, **budget(s['curve'])
        )
        print(f"  {ds:14s} {name:16s} {rows[name]}", flush=True)
    return rows


def paired_test(runs: dict[str, Path], data_root, farmer: str = 'FARMER, no split') -> dict | None:
    """FARMER (row `farmer`) against the AF alone image by image on the test split: both runs' best weights score every
    test image with the same dequantisation noise (`heldout_bpds`: each image's noise from its own fixed generator), and
    the mean per-image difference FARMER - AF gets its 95% t-interval over images. None unless both runs are on disk."""
    a, f = runs.get('AF alone'), runs.get(farmer)
    if not (a and f and (a / 'best.safetensors').is_file() and (f / 'best.safetensors').is_file()):
        return None
    test = run_splits(FarmerConfig.from_dict(json.loads((f / 'config.json').read_text())), data_root)['test']
    return paired(test_bpds(a, test), test_bpds(f, test))


def paired(va: torch.Tensor, vf: torch.Tensor, **extra) -> dict:
    "Per-image test BPDs of the AF alone and of FARMER `[N]`: the mean difference FARMER - AF, its 95% t-interval over images."
    e = effect(va.tolist(), vf.tolist(), paired=True, better='lower')  # positive: FARMER lower (better)
    return dict(
        diff=-e['effect'],
        lo=-e['hi'],
        hi=-e['lo'],
        images=len(va),  # FARMER - AF, bits per dimension
        **extra,
        farmer_lower_share=(vf < va).float().mean().item(),
        af_mean=va.mean().item(),
        farmer_mean=vf.mean().item(),
    )


def paired_kept(images: Path, ds: str, rows: dict, farmer: str, steps: int) -> dict | None:
    """FARMER (row `farmer` of the table at B `rows`) against the AF alone image by image, from the per-image test BPDs kept
    in `images`: on the seeds both rows' chosen settings have there, each image's difference FARMER - AF averaged over
    those seeds, and its mean with a 95% t-interval over images. None before a seed of both is kept."""
    kept = load_file(images) if images.is_file() else {}
    key = lambda name, s: f"{ds}/{slug(dict(rows[name]['chosen'], steps=steps, seed=s))}"
    seeds = [s for s in SEEDS if key(farmer, s) in kept and key('AF alone', s) in kept]
    if not seeds:
        return None
    return paired(*(torch.stack([kept[key(n, s)] for s in seeds]).mean(0) for n in ('AF alone', farmer)), seeds=seeds)


def test_bpds(run: Path, test: ImageSet) -> torch.Tensor:
    "The BPD of each image of the test split `[N]` under the best weights of `run` (the noise of the run's own test score)."
    dev = pick_device()
    return heldout_bpds(load_run_model(run, device=dev), test, dev)


def _mean_ci(v: list[float]) -> list[float]:
    "95% t-interval of the mean of `v` (via `effect` against zeros: the same rule as every claim)."
    e = effect([0.0] * len(v), v, paired=True, better='higher')
    return [e['lo'], e['hi']]


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--datasets', default='digits,fashion-mnist', help='presets to compare (comma-separated)')
    p.add_argument('--models', default=';'.join(MODELS), help='rows to train, separated by semicolons')
    p.add_argument('--data-root', help='data root for Fashion-MNIST (default: $FARMER_DATA or ~/.cache/farmer)')
    p.add_argument(
        '--out', help='the table (default figures/likelihood.json; --budget long: figures/likelihood-long.json)'
    )
    p.add_argument('--runs', default='runs/likelihood', help='where the runs go')
    p.add_argument('--record', help="the record of finished runs (default: likelihood-runs.json beside --out)")
    p.add_argument('--steps', type=int, help='train every run this many steps only (a smoke test of the script)')
    p.add_argument(
        '--budget',
        choices=('short', 'long', 'B'),
        default='short',
        help="'short': the 2,000-step table; 'long': finding B; 'B': the table at B",
    )
    p.add_argument(
        '--max-new-runs', type=int, help='train at most this many runs now (the record keeps them; rerun to go on)'
    )
    a = p.parse_args()
    NEW_RUNS['left'] = a.max_new_runs
    default = dict(short='likelihood.json', long='likelihood-long.json', B='likelihood-B.json')[a.budget]
    path = Path(a.out or f'figures/{default}')
    record = Path(a.record) if a.record else path.with_name('likelihood-runs.json')
    try:
        run_stage(a, path, record)
    except OutOfRuns:
        print(f"trained the {a.max_new_runs} run(s) --max-new-runs allows; run the same command again to go on")


def run_stage(a, path: Path, record: Path):
    "The stage `a.budget` names, writing its table to `path` and every finished run to `record`."
    if a.budget == 'long':
        short = json.loads(path.with_name('likelihood.json').read_text())
        names = [n for n in a.models.split(';') if n in LONG_ROWS] if a.models != ';'.join(MODELS) else list(LONG_ROWS)
        for ds in a.datasets.split(','):
            result = json.loads(path.read_text()) if path.is_file() else {}
            rows = convergence(ds, names, a.data_root, Path(a.runs), record, short[ds], a.steps, result.get(ds))
            result[ds] = result.get(ds, {}) | rows
            pair = paired_test({n: Path(a.runs) / ds / slug(r['over']) for n, r in result[ds].items()}, a.data_root)
            if pair and 'FARMER, no split' in result[ds]:  # kept from an earlier sitting when the runs are gone
                result[ds]['FARMER, no split']['vs_af_paired'] = pair
            path.write_text(json.dumps(result, indent=1))
        return
    rows_of = B_ROWS if a.budget == 'B' else MODELS
    for ds in a.datasets.split(','):
        for name in a.models.split(';') if a.models != ';'.join(MODELS) else rows_of:
            row = model_row(ds, name, a.data_root, Path(a.runs), a.steps, record, at_B=a.budget == 'B')
            result = (
                json.loads(path.read_text()) if path.is_file() else {}
            )  # re-read: another process may have written rows
            rows = result.setdefault(ds, {}) | {name: row}
            result[ds] = {n: rows[n] for n in sorted(rows, key=lambda n: list(rows_of).index(n))}  # in table order
            add_gains(result[ds])
            if a.budget == 'B' and 'AF alone' in result[ds]:  # image by image, from the kept per-image test BPDs
                for n, r in result[ds].items():
                    if n != 'AF alone' and (
                        pair := paired_kept(record.with_name(B_IMAGES), ds, result[ds], n, a.steps or B_STEPS)
                    ):
                        r['vs_af_paired'] = pair
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(result, indent=1))
        if set(rows_of) <= set(rows := json.loads(path.read_text())[ds]):  # every row in: the claim is decided here
            column = types.SimpleNamespace(
                claims=path.with_name('claims.json'), column=ds + ('-B' if a.budget == 'B' else '')
            )
            steps = a.steps or (B_STEPS if a.budget == 'B' else preset(ds).recipe.steps)
            record_claim(column, 'likelihood', **likelihood_claim(rows, a.budget == 'B', steps))
    print(table(json.loads(path.read_text())))


def likelihood_claim(rows: dict, at_B: bool, steps: int) -> dict:
    """The claim "FARMER beats the AF alone in held-out likelihood" on one finished table `rows` (`record_claim`'s
    arguments), trained `steps` steps (`at_B`: the table at B): the FARMER row chosen on validation (`best_farmer`)
    against the AF alone, its test BPD over seeds (Welch) and, where the per-image test BPDs are kept (at B), image by
    image; `record_claim` decides by the one rule (`verdict`)."""
    name, f = best_farmer(rows)
    af = rows['AF alone']
    effects = {'test BPD, AF - FARMER': effect(af['test_bpd'], f['test_bpd'], better='lower')}  # > 0: FARMER lower
    if p := f.get('vs_af_paired'):  # FARMER - AF per image, averaged over the seeds both kept: flipped to AF - FARMER
        effects[f"each of {p['images']:,} test images, seeds {', '.join(map(str, p['seeds']))}"] = dict(
            effect=-p['diff'], lo=-p['hi'], hi=-p['lo'], seeds=[len(p['seeds'])] * 2, paired=True
        )
    at = f"{'B = ' if at_B else ''}{steps:,} steps"
    ours = (
        f"FARMER ({name.removeprefix('FARMER, ')}, chosen on validation) {f['mean']:.3f} against the AF alone's "
        f"{af['mean']:.3f} test BPD at {at}: {drop(f['vs_af_pct'])}"
    )
    cmd = 'python bench/likelihood.py' + (' --budget B' if at_B else '')
    return dict(
        claim='FARMER beats the AF alone in held-out likelihood (supplement Table 6)',
        paper="ImageNet 64: 2.61 against TARFlow's 2.99 BPD",
        ours=ours,
        where=f'`nbs/26_likelihood.ipynb`, `{cmd}`',
        effects=effects,
    )


def add_gains(rows: dict) -> None:
    "Each row's test BPD drop against the AF alone, in % of the AF's mean, with Welch's 95% interval (once the AF row exists)."
    af = rows.get('AF alone')
    for name, r in rows.items():
        if af is None or r is af:
            continue
        e = effect(af['test_bpd'], r['test_bpd'], better='lower')
        r['vs_af_pct'] = [100 * v / af['mean'] for v in (e['effect'], e['lo'], e['hi'])]
        e, m = effect(af['test_median'], r['test_median'], better='lower'), statistics.mean(af['test_median'])
        r['median_vs_af_pct'] = [100 * v / m for v in (e['effect'], e['lo'], e['hi'])]


def table(result: dict) -> str:
    "The Markdown table of `figures/likelihood.json`: test BPD of three seeds, and each row against the AF alone."
    lines = [
        '| dataset | model | chosen on validation | parameters | test BPD, mean [95% CI] (3 seeds) | vs the AF alone [95% CI] | median image [vs the AF] | worst image |',
        '|---|---|---|---|---|---|---|---|',
    ]
    for ds, rows in result.items():
        for name, r in rows.items():
            af = name == 'AF alone'
            gain = 'baseline' if af else (drop(r['vs_af_pct']) if 'vs_af_pct' in r else 'no AF row yet')
            med = f"{statistics.mean(r['test_median']):.3f}"
            med += '' if af or 'median_vs_af_pct' not in r else f" [{drop(r['median_vs_af_pct'])}]"
            chosen = ', '.join(f'{k}={v}' for k, v in r['chosen'].items())
            lines.append(
                f"| {ds} | {name} | {chosen} | {r['params'] / 1e6:.2f}M | {r['mean']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] | {gain} | "
                f"{med} | {max(r['test_max']):.1f} |"
            )
    return '\n'.join(lines)


if __name__ == '__main__':
    main()

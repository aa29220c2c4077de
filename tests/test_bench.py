"The benchmarks' own smoke runs: the scripts a GPU user runs must work before anyone has a GPU."

import json, math, os, shutil, subprocess, sys
import pytest, torch
from readme import ROOT


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_row():
    r = subprocess.run(
        [sys.executable, str(ROOT / 'bench' / 'gpu_check.py'), '--smoke', '--device', 'cpu'],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert 'FAILED' not in out, out
    for row in (
        'trained in bf16 vs fp32',
        'AF inverse of imagenet256-1.1b (smoke: tiny), batch 2, fp64',
        'imagenet64-556m',
        'imagenet256-1.9b',
        'fashion-mnist | training',
        'imagenet256-1.1b compiled',
        'memory split',
    ):
        assert row in out, (row, out)


@pytest.mark.slow
def test_likelihood_bench_smoke_tunes_every_row_alike(tmp_path):
    "Every row searched over the same learning rates on validation, three seeds of the chosen one, gains against the AF."
    sys.path.insert(0, str(ROOT / 'bench'))
    import likelihood as L
    from farmer.config import preset
    from farmer.model import param_counts

    out = tmp_path / 'likelihood.json'
    bench = lambda: subprocess.run(
        [sys.executable, str(ROOT / 'bench' / 'likelihood.py'), '--datasets', 'digits', '--steps', '2']
        + ['--runs', str(tmp_path / 'runs'), '--out', str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    r = bench()
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads(out.read_text())['digits']
    record = json.loads((tmp_path / 'likelihood-runs.json').read_text())['digits']
    assert len(record) == sum(len(r['search']) + 2 for r in rows.values())  # the search, then seeds 1 and 2
    assert all(r['summary']['curve'][-1] == [2, r['summary']['final_val_bpd']] for r in record.values())
    shutil.rmtree(tmp_path / 'runs')  # a later sitting without the checkpoints: the record alone rebuilds the table
    out.unlink()
    r = bench()
    assert r.returncode == 0, r.stderr[-3000:]
    assert not (tmp_path / 'runs').exists() and json.loads(out.read_text())['digits'] == rows  # nothing trained again
    assert set(rows) == set(L.MODELS)
    claim = json.loads((tmp_path / 'claims.json').read_text())['digits']['likelihood']  # decided once every row is in
    assert claim == dict(L.likelihood_claim(rows, False, 2), reproduces=claim['reproduces']) and claim['effects']
    for name, row in rows.items():
        # the same search for every row: LRS, grown past an edge that holds its best
        for arch in L.MODELS[name]('digits'):
            val = {s['over']['lr']: s['val_bpd'] for s in row['search'].values() if arch.items() <= s['over'].items()}
            lrs, best = sorted(val), min(val, key=val.get)
            beyond = best * L.LR_STEP ** (1 if best == lrs[-1] else -1)  # the next value past the edge holding the best
            assert set(L.LRS) <= set(lrs), (name, lrs)
            assert lrs[0] < best < lrs[-1] or not L.LR_RANGE[0] <= beyond <= L.LR_RANGE[1], (name, val)
        assert row['chosen']['lr'] in [s['over']['lr'] for s in row['search'].values()]
        assert len(row['test_bpd']) == len(L.SEEDS) == 3
        assert row['ci'][0] <= row['mean'] <= row['ci'][1]
        assert (name == 'AF alone') == ('vs_af_pct' not in row) == ('median_vs_af_pct' not in row)
        assert len(row['test_median']) == 3 and all(m <= x for m, x in zip(row['test_median'], row['test_max']))
    # the AF alone's two widths bracket the largest FARMER row's parameter count within 10%
    farmer = max(
        param_counts(preset('digits', **o))['total'] for n in L.MODELS if n != 'AF alone' for o in L.MODELS[n]('digits')
    )
    af = sorted(param_counts(preset('digits', **o))['total'] for o in L.MODELS['AF alone']('digits'))
    assert af[0] <= farmer <= af[-1] and all(abs(p / farmer - 1) <= 0.10 for p in af), (af, farmer)
    # the long budget: the two rows with the settings chosen above, their curves, training-log terms and B
    long = tmp_path / 'likelihood-long.json'
    long_cmd = [sys.executable, str(ROOT / 'bench' / 'likelihood.py'), '--budget', 'long', '--datasets', 'digits']
    long_cmd += ['--steps', '3', '--runs', str(tmp_path / 'long'), '--out', str(long)]
    r = subprocess.run(long_cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(long.read_text())['digits']
    assert set(got) == set(L.LONG_ROWS)
    for name, row in got.items():
        assert row['over']['lr'] == rows[name]['chosen']['lr'] and row['B'] == 3 and not row['flattened']
        assert [t[0] for t in row['terms']] == [3] and row['curve'][-1][0] == 3
    # the paired test comparison re-scores the two runs' best weights with each image's own noise: its means are the
    # runs' own test scores, and its mean difference is theirs
    pair = got['FARMER, no split']['vs_af_paired']
    assert abs(pair['farmer_mean'] - got['FARMER, no split']['test_bpd']) < 1e-5, pair
    assert abs(pair['af_mean'] - got['AF alone']['test_bpd']) < 1e-5, pair
    assert abs(pair['diff'] - (pair['farmer_mean'] - pair['af_mean'])) < 1e-5 and pair['lo'] < pair['diff'] < pair['hi']
    # a short table that chooses differently later (its grid grew) leaves the long rows on the settings they trained with
    short = json.loads(out.read_text())
    for row in short['digits'].values():
        row['chosen']['lr'] *= 2
    out.write_text(json.dumps(short))
    r = subprocess.run(long_cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {n: row['over'] for n, row in json.loads(long.read_text())['digits'].items()} == {
        n: row['over'] for n, row in got.items()
    }
    assert len(json.loads((tmp_path / 'likelihood-runs.json').read_text())['digits']) == len(record) + 2  # none trained


def test_budget_is_where_the_validation_curve_flattens():
    sys.path.insert(0, str(ROOT / 'bench'))
    from likelihood import budget

    flat = [[0, 8.0], [1000, 5.0], [2000, 4.5], [3000, 4.21], [4000, 4.195], [5000, 4.19]]
    assert budget(flat) == dict(B=4000, flattened=True, tail_gain=budget(flat)['tail_gain'])  # 3000 is 0.02 above
    assert abs(budget(flat)['tail_gain'] - 0.005) < 1e-9
    steep = [[0, 8.0], [1000, 5.0], [2000, 4.0]]
    assert budget(steep) == dict(B=2000, flattened=False, tail_gain=1.0)


def test_why_slower_counts_the_mixture_head_and_takes_gaps_at_shared_steps():
    "The head's count is K (1 + 2d) (W + 1); each gap is row - base at the steps both recorded, zero for the base."
    sys.path.insert(0, str(ROOT / 'bench'))
    import why_slower as W
    from farmer.config import preset

    for over in W.SCREENS.values():
        cfg, c = preset('fashion-mnist', **over), W.params(over)
        assert c['head_I'] == cfg.K_I * (1 + 2 * cfg.dim_I) * (cfg.ar_width + 1), over
        assert c['af'] + c['ar'] + c['head_I'] == c['total']
    base = dict(
        curve=[[0, 9.0], [1000, 5.0], [2000, 4.0]], terms=[[1000, 5.1, 0.5, 0.0, 1.0], [2000, 4.1, 0.2, 0.1, 1.5]]
    )
    row = dict(
        curve=[[0, 9.0], [1000, 5.5], [3000, 3.0]], terms=[[1000, 5.6, 0.3, 0.0, 0.9], [3000, 3.1, 0.1, 0.0, 2.0]]
    )
    gaps = W.compare({'base': base, 'row': row}, base='base')
    assert [g['step'] for g in gaps['row']] == [1000] and [g['step'] for g in gaps['base']] == [1000, 2000]
    g = gaps['row'][0]
    assert (g['val'], g['prior'], g['logdet']) == pytest.approx((0.5, -0.2, -0.1))
    assert all(v == 0 for b in gaps['base'] for k, v in b.items() if k != 'step')
    tail = W.late(gaps, 2000, share=0.25)  # the evaluations from step 1,500 on: the base's at 2,000, none of the row's
    assert tail['steps'] == [1500, 2000] and set(tail['rows']) == {'base'}
    assert W.late(gaps, 2000, share=0.5)['rows']['row'] == pytest.approx(dict(val=0.5, prior=-0.2, logdet=-0.1))


def test_lr_search_grows_the_grid_until_its_best_is_interior():
    "At B the learning-rate grid grows one value at a time past the edge its best sits at, never trains a value twice."
    sys.path.insert(0, str(ROOT / 'bench'))
    import likelihood as L

    calls = []
    bowl = lambda lr: calls.append(lr) or (math.log(lr) - math.log(7e-3)) ** 2  # validation BPD, lowest at 7e-3
    seen = L.lr_search(bowl, L.B_LRS, grow=True)
    best, grid = min(seen, key=seen.get), sorted(seen)
    assert grid[0] < best < grid[-1] and len(grid) > len(L.B_LRS), grid  # interior, after growing
    assert sorted(calls) == grid and abs(best / 7e-3 - 1) < L.LR_STEP - 1
    assert set(L.lr_search(bowl, L.B_LRS)) == set(L.B_LRS)  # without `grow`: the grid as given
    falling = L.lr_search(lambda lr: -lr, L.B_LRS, grow=True)  # best beyond the range: the grid stops at its edge
    assert max(falling) <= L.LR_RANGE[1] < max(falling) * L.LR_STEP


def test_arch_search_at_B_searches_a_later_width_only_where_it_wins():
    "At B a second width is tried at the first's best rate; its rate is searched only if it beats the first there."
    sys.path.insert(0, str(ROOT / 'bench'))
    import likelihood as L

    wide, narrow = dict(af_width=152), dict(af_width=136)
    for offset, searched in ((+0.1, False), (-0.1, True)):  # the narrow width worse, then better, by `offset` bits
        calls = []
        bowl = lambda arch, lr: (
            calls.append((arch['af_width'], lr))
            or ((math.log(lr) - math.log(3e-3)) ** 2 + (offset if arch is narrow else 0))
        )
        seen = L.arch_search(bowl, [wide, narrow], L.B_LRS, grow=True, screen=True)
        assert len(calls) == len(set(calls)) == len(seen)  # no run trained twice
        assert {lr for w, lr in calls if w == 152} == set(L.B_LRS)  # 3e-3 is interior: the grid did not grow
        assert {lr for w, lr in calls if w == 136} == (set(L.B_LRS) if searched else {3e-3}), calls
        full = L.arch_search(bowl, [wide, narrow], L.B_LRS, grow=True)  # the 2,000-step search: every width, every rate
        assert set(full) == {(i, lr) for i in (0, 1) for lr in L.B_LRS}


@pytest.mark.slow
def test_likelihood_at_B_trains_as_many_runs_as_allowed_and_goes_on(tmp_path):
    "`--budget B --max-new-runs N` trains N runs and stops; the same command again goes on from the record to the row."
    cmd = [sys.executable, str(ROOT / 'bench' / 'likelihood.py'), '--budget', 'B', '--datasets', 'digits']
    cmd += ['--steps', '2', '--runs', str(tmp_path / 'B'), '--models', 'FARMER, no split', '--max-new-runs']
    run = lambda n: subprocess.run(cmd + [str(n)], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    r = run(2)
    assert r.returncode == 0 and 'run the same command again' in r.stdout, r.stderr[-3000:]
    record = lambda: json.loads((tmp_path / 'figures' / 'likelihood-runs.json').read_text())['digits']
    assert sorted(record()) == ['d_I=None_lr=0.002_steps=2_seed=0', 'd_I=None_lr=0.003_steps=2_seed=0']
    assert not (tmp_path / 'figures' / 'likelihood-B.json').exists()  # no row before its search and seeds are done
    r = run(20)
    assert r.returncode == 0, r.stderr[-3000:]
    row = json.loads((tmp_path / 'figures' / 'likelihood-B.json').read_text())['digits']['FARMER, no split']
    lrs = sorted(s['over']['lr'] for s in row['search'].values())
    sys.path.insert(0, str(ROOT / 'bench'))
    import likelihood as L

    assert set(L.B_LRS) <= set(lrs) and len(row['test_bpd']) == 3 and len(record()) == len(lrs) + 2
    lr = row['chosen']['lr']
    assert lrs[0] < lr < lrs[-1] or lr * L.LR_STEP > L.LR_RANGE[1] or lr / L.LR_STEP < L.LR_RANGE[0], (lr, lrs)
    # every run at B keeps its per-image test BPDs, whose mean is the run's recorded test BPD, for the paired comparison
    from safetensors.torch import load_file

    kept = load_file(tmp_path / 'figures' / L.B_IMAGES)
    assert sorted(kept) == sorted(f'digits/{k}' for k in record())
    for k, r in record().items():
        v = kept[f'digits/{k}']
        assert v.shape == (row['test_images'],) and abs(v.mean().item() - r['summary']['test_bpd']) < 1e-5, k


def test_likelihood_claim_compares_the_farmer_row_chosen_on_validation_with_the_af_by_the_one_rule():
    "The claim's effects are AF - FARMER (> 0: FARMER lower), over seeds and image by image, for the best FARMER on validation."
    sys.path.insert(0, str(ROOT / 'bench'))
    import likelihood as L
    from farmer.analysis import effect, verdict

    row = lambda val, test, **kw: dict(val_bpd=val, test_bpd=test, mean=sum(test) / 3, vs_af_pct=[0.0] * 3, **kw)
    pair = dict(diff=-0.08, lo=-0.09, hi=-0.07, images=10_000, seeds=[1, 2])  # FARMER - AF, per image
    rows = {
        'FARMER, no split': row([3.5, 3.5, 3.5], [3.3, 3.31, 3.29]),
        'FARMER, token-8': row([3.4, 3.45, 3.41], [3.2, 3.21, 3.19], vs_af_paired=pair),  # lower on validation
        'AF alone': row([3.6] * 3, [3.40, 3.41, 3.39]),
    }
    c = L.likelihood_claim(rows, True, 30_000)
    seeds, images = c['effects'].values()
    assert seeds == effect([3.40, 3.41, 3.39], [3.2, 3.21, 3.19], better='lower') and seeds['lo'] > 0
    assert (images['effect'], images['lo'], images['hi'], images['paired']) == (0.08, 0.07, 0.09, True)
    assert 'FARMER (token-8, chosen on validation) 3.200' in c['ours'] and 'B = 30,000 steps' in c['ours']
    assert verdict(list(c['effects'].values())) == 'yes' and '--budget B' in c['where']
    rows['FARMER, token-8']['vs_af_paired'] = dict(pair, diff=0.08, lo=0.07, hi=0.09)  # worse image by image: mixed
    assert verdict(list(L.likelihood_claim(rows, True, 30_000)['effects'].values())) == 'mixed'
    del rows['FARMER, token-8']['vs_af_paired']
    assert len(L.likelihood_claim(rows, False, 2000)['effects']) == 1  # no per-image BPDs kept: the seeds alone


def test_paired_comparison_at_B_uses_the_seeds_both_rows_kept(tmp_path):
    "Image by image at B: each image's FARMER - AF difference averaged over the seeds both rows kept, then over images."
    sys.path.insert(0, str(ROOT / 'bench'))
    import likelihood as L
    from farmer.runtime import save_checkpoint
    from safetensors.torch import load_file

    rows = {'AF alone': dict(chosen=dict(K_I=1, af_width=8, lr=0.1)), 'FARMER, no split': dict(chosen=dict(lr=0.2))}
    key = lambda name, s: f"digits/{L.slug(dict(rows[name]['chosen'], steps=5, seed=s))}"
    g = torch.Generator().manual_seed(0)
    af = {s: 4 + torch.rand(200, generator=g) for s in (0, 1, 2)}
    farmer = {s: af[s] - 0.1 + 0.05 * torch.randn(200, generator=g) for s in (0, 1)}  # seed 2 not trained yet
    images = tmp_path / L.B_IMAGES
    assert L.paired_kept(images, 'digits', rows, 'FARMER, no split', 5) is None  # nothing kept yet
    save_checkpoint(images, {key('AF alone', s): v for s, v in af.items()}, {})
    assert L.paired_kept(images, 'digits', rows, 'FARMER, no split', 5) is None  # no seed of both
    save_checkpoint(images, load_file(images) | {key('FARMER, no split', s): v for s, v in farmer.items()}, {})
    p = L.paired_kept(images, 'digits', rows, 'FARMER, no split', 5)
    d = (farmer[0] - af[0] + farmer[1] - af[1]) / 2  # seeds 0 and 1 only
    assert p['seeds'] == [0, 1] and p['images'] == 200
    assert p['diff'] == pytest.approx(d.mean().item(), abs=1e-6) and p['lo'] < p['diff'] < p['hi']
    assert p['hi'] - p['lo'] == pytest.approx(2 * 1.972 * d.std().item() / math.sqrt(200), rel=0.01)  # t(199) interval
    assert p['farmer_lower_share'] == pytest.approx((d < 0).float().mean().item())


@pytest.mark.slow
def test_sample_models_keep_each_run_once(tmp_path):
    "One run per call: trained, scored over training and on test, kept as fp16 weights that load with its config."
    sys.path.insert(0, str(ROOT / 'bench'))
    import sample_models as S
    from farmer.analysis import b_config
    from farmer.runs import load_pretrained, model_manifest

    kept, rec = tmp_path / 'kept', tmp_path / 'rec.json'
    cmd = [sys.executable, str(ROOT / 'bench' / 'sample_models.py'), '--preset', 'digits-samples', '--rows', 'no-split']
    cmd += ['--steps', '4', '--eval-every', '2', '--every', '2', '--n', '20', '--runs', str(tmp_path / 'runs')]
    cmd += ['--kept', str(kept), '--record', str(rec), '--max-new-runs', '1']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and 'run the same command again' in r.stdout, r.stderr[-3000:]
    cfg = lambda seed: b_config('no-split', seed, 'digits-samples', 4, 2)
    assert list(model_manifest(kept)) == ['no-split-seed0'] and load_pretrained('no-split-seed0', root=kept).cfg == cfg(
        0
    )
    e = json.loads(rec.read_text())['no-split-seed0']
    assert sorted(e['points']) == ['2', '4'] and e['test']['seed'] == 0 and e['seed'] == 1
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)  # the next call: seed 0 is kept, seed 1 trains
    assert r.returncode == 0 and 'no-split-seed0   kept' in r.stdout and 'no-split-seed1: kept' in r.stdout, r.stdout
    assert list(model_manifest(kept)) == ['no-split-seed0', 'no-split-seed1']
    configs = S.model_configs(kept)
    assert S.shipped_as(cfg(1), configs) == 'no-split-seed1' and S.shipped_as(cfg(2), configs) is None
    # a record from before a config field existed (its default then) still counts as the same run; another config does not
    old = {k: v for k, v in cfg(2).to_dict().items() if k != 'head_lr'}
    assert S.status('x', cfg(2), kept, {'x': dict(test={}, config=old)}) == 'recorded'
    assert S.status('x', cfg(2), kept, {'x': dict(test={}, config=cfg(1).to_dict())}) is None


def test_run_times_sums_finished_runs_per_group(tmp_path):
    "The training time the README quotes: each group's finished runs summed, an unfinished run (no summary) left out."
    sys.path.insert(0, str(ROOT / 'bench'))
    import run_times as T

    for group, run, wall in (
        ('digits', 'a-seed0', 60.0),
        ('digits', 'a-seed1', 90.0),
        ('fashion-mnist', 'b-seed0', 30.0),
    ):
        (tmp_path / group / run).mkdir(parents=True)
        (tmp_path / group / run / 'summary.json').write_text(json.dumps(dict(wall_s=wall, steps=1)))
    (tmp_path / 'digits' / 'cut-short').mkdir()  # a run still training: no summary yet
    assert T.run_times(tmp_path) == {'digits': [60.0, 90.0], 'fashion-mnist': [30.0]}
    r = subprocess.run(
        [sys.executable, str(ROOT / 'bench' / 'run_times.py'), str(tmp_path / 'none')], capture_output=True, text=True
    )
    assert r.returncode != 0 and 'no finished runs' in r.stderr and 'Traceback' not in r.stderr


@pytest.mark.slow
def test_over_training_scores_each_kept_evaluation(tmp_path):
    "The weights `--keep-evals` kept are scored once each, with the run's own validation BPD; a rerun adds nothing."
    from farmer.config import preset
    from farmer.runtime import read_jsonl
    from farmer.train import train

    run = tmp_path / 'r'
    train(preset('digits-small', steps=4, eval_every=2, batch_size=16), run, progress=False, keep_evals=True)
    assert sorted(p.name for p in (run / 'evals').iterdir()) == [f'step00000{s}.safetensors' for s in (0, 2, 4)]
    out = tmp_path / 'ot.json'
    cmd = [sys.executable, str(ROOT / 'bench' / 'over_training.py'), '--runs', f'tiny={run}', '--every', '2']
    cmd += ['--n', '20', '--out', str(out), '--test']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    e = json.loads(out.read_text())['tiny']
    val = {m['step']: m['val_bpd'] for m in read_jsonl(run / 'metrics.jsonl') if 'val_bpd' in m}
    assert {int(s): p['val_bpd'] for s, p in e['points'].items()} == {2: val[2], 4: val[4]}
    assert all(p['fid'] > 0 and 0 <= p['consistency'] <= 1 for p in e['points'].values())
    assert e['test']['seed'] == 0 and e['seed'] == 1 and e['summary']['test_bpd'] == e['test']['bpd']
    assert (tmp_path / 'samples-over-training-digits.png').stat().st_size > 0
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and 'val FID' not in r.stdout and 'test split' not in r.stdout, r.stdout  # nothing twice
    (tmp_path / 'samples-over-training-digits.png').unlink()
    r = subprocess.run(
        cmd[:2] + ['--out', str(out)], capture_output=True, text=True, timeout=900
    )  # no runs: redraw only
    assert r.returncode == 0 and (tmp_path / 'samples-over-training-digits.png').stat().st_size > 0, r.stderr[-3000:]


def test_distill_kept_says_in_one_line_what_is_missing(tmp_path):
    "The distillation claim at B needs Fashion-MNIST and the kept models: without them one line says what to do."
    env = dict(os.environ, FARMER_DATA=str(tmp_path))  # no data here: it stops before any distillation
    r = subprocess.run(
        [sys.executable, str(ROOT / 'bench' / 'distill_kept.py')], capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert r.stderr.startswith('distill_kept: Fashion-MNIST not found') and r.stderr.count('\n') == 1, r.stderr


def test_why_slower_mixture_use_matches_torch_distributions():
    "Responsibilities' effective count against torch.distributions (fp64): Normal components, Categorical entropy."
    sys.path.insert(0, str(ROOT / 'bench'))
    import why_slower as W
    from farmer import Farmer, preset
    from farmer.af import perturb_parameters
    from farmer.data import dequantize_uniform, load_dataset
    import torch.distributions as D

    torch.manual_seed(0)
    model = perturb_parameters(Farmer(preset('digits', K_I=6, d_I=None)).double(), 0.03).eval()
    x8, y = load_dataset('digits')[0][:5], torch.arange(5)
    got = W.responsibilities_use(model, x8, y)
    with torch.no_grad():  # the reference, step by step
        x = dequantize_uniform(x8, model.cfg.value_range, generator=torch.Generator().manual_seed(0)).double()
        z_I, _ = model.split(model.to_ar_order(model.encode(x)[0]))
        g, _ = model.ar(z_I, y)
        comp = D.Independent(D.Normal(g.mean, g.log_sigma.exp()), 1).log_prob(z_I[..., None, :])  # [B, N, K]
        resp = D.Categorical(logits=comp + torch.log_softmax(g.logits, -1))
        want = resp.entropy().exp().mean().item()
        prior = D.Categorical(logits=g.logits).entropy().exp().mean().item()
    assert got['K'] == 6 and 1.05 < want < 5.95  # a mixture neither collapsed nor uniform
    assert got['effective_components'] == pytest.approx(want, rel=1e-9)
    assert got['prior_components'] == pytest.approx(prior, rel=1e-9) and 1 < prior < 6
    assert 0 < got['chosen_sigma_5_95'][0] <= got['chosen_sigma_5_95'][1] and 1 <= got['chosen_by_1pct'] <= 6

"The analysis toolkit: image measures against brute force, the FAST/FULL switch, claims, and ensure_run."

import json, shutil
import numpy as np, pytest, torch
from farmer.analysis import (
    analysis_setup,
    project_root,
    record_claim,
    claims_table,
    verdict,
    effect,
    CLAIMS,
    FAST_STEPS,
    ANALYSIS_DATA,
    Analysis,
    ablation_rows,
    b_config,
    default_model,
    split_model,
    KEPT,
)
from farmer.eval import laplacian_variance, ssim
from farmer.config import FarmerConfig, preset
from farmer.train import ensure_run
from readme import ROOT


def _laplacian_variance_loops(img: np.ndarray) -> float:
    "Brute force: 5-point Laplacian with reflected borders (scipy 'reflect' = edge pixel repeated), variance per channel, mean."
    out = []
    for c in img:
        H, W = c.shape
        refl = lambda i, n: -1 - i if i < 0 else 2 * n - 1 - i if i >= n else i
        at = lambda i, j: c[refl(i, H), refl(j, W)]
        lap = [
            [at(i - 1, j) + at(i + 1, j) + at(i, j - 1) + at(i, j + 1) - 4 * c[i, j] for j in range(W)]
            for i in range(H)
        ]
        out.append(np.var(np.array(lap)))
    return float(np.mean(out))


def test_laplacian_variance_matches_brute_force():
    x = torch.randint(0, 256, (5, 3, 6, 7), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    ref = torch.tensor([_laplacian_variance_loops(i.double().numpy() / 255) for i in x], dtype=torch.float64)
    assert torch.allclose(laplacian_variance(x), ref, atol=1e-12)
    assert laplacian_variance(torch.full((2, 1, 8, 8), 77, dtype=torch.uint8)).abs().max() == 0


def test_ssim_identity_symmetry_and_noise_order():
    x = torch.randint(0, 256, (4, 1, 8, 8), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    y = (
        (x.float() + 30 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2)))
        .clamp(0, 255)
        .to(torch.uint8)
    )
    assert torch.allclose(ssim(x, x), torch.ones(4, dtype=torch.float64))
    assert torch.allclose(ssim(x, y), ssim(y, x)) and (ssim(x, y) < 1).all()


def test_fast_mode_at_budget_b_reads_the_kept_models_and_writes_only_into_its_temporary_root(monkeypatch):
    for k, v in dict(FARMER_FAST='1', FARMER_ANALYSIS_DATA='fashion-mnist', FARMER_BUDGET='B').items():
        monkeypatch.setenv(k, v)
    a = analysis_setup()
    assert a.fast and a.budget == 'B' and a.seeds == (0,) and ROOT not in a.root.parents and a.root != ROOT
    assert all(a.root in p.parents for p in (a.claims, a.runs / 'x', a.figures / 'x'))
    assert a.kept == ROOT / KEPT  # this checkout's kept models (an editable install), only read
    assert default_model(a, 0).cfg == b_config('no-split', 0)  # the converged chapter model, not a 60-step toy
    (s,) = a.split_seeds
    assert split_model(a).cfg == b_config('pixel-8', s)
    assert not any(a.root.rglob('*.safetensors'))  # nothing trained or copied


def test_fast_mode_never_writes_into_the_repository(monkeypatch):
    monkeypatch.setenv('FARMER_FAST', '1')
    monkeypatch.delenv('FARMER_ANALYSIS_DATA', raising=False)
    a = analysis_setup()
    assert (
        a.fast
        and ROOT not in a.root.parents
        and a.root != ROOT
        and a.config().recipe.steps == FAST_STEPS['steps']
        and a.dataset == 'digits'
    )
    monkeypatch.setenv('FARMER_FAST', '0')
    full = analysis_setup()
    assert (
        not full.fast
        and full.root == ROOT
        and full.claims == ROOT / 'figures' / 'claims.json'
        and full.dataset == 'fashion-mnist'
    )
    assert (
        full.config().recipe.steps == ANALYSIS_DATA['fashion-mnist']['recipe'][1]['steps'] and full.config().patch == 7
    )
    assert full.model_config(2) == preset('fashion-mnist-samples', seed=2) and full.seeds == (0, 1, 2)
    monkeypatch.setenv('FARMER_ANALYSIS_DATA', 'digits')
    assert analysis_setup().config() == preset('digits-small', steps=1000)
    assert analysis_setup().model_config().dequant == 'gaussian'  # every analysis model: the sample recipe
    monkeypatch.setenv('FARMER_ANALYSIS_DATA', 'cifar')
    with pytest.raises(ValueError, match='no analysis recipe for dataset'):
        analysis_setup()


def test_ablation_rows_share_the_recipe_and_seed_the_core_twice():
    a = Analysis(False, ROOT, 'fashion-mnist')
    rows = ablation_rows(a)
    cfgs = {(r, s): a.config(seed=s, **ov) for r, (ov, seeds) in rows.items() for s in seeds}
    assert len(set(map(str, (c.to_dict() for c in cfgs.values())))) == len(cfgs)  # no two runs train the same thing
    assert {c.recipe.steps for c in cfgs.values()} == {1000} and {c.dataset for c in cfgs.values()} == {'fashion-mnist'}
    assert {c.dequant for c in cfgs.values()} == {'gaussian'}
    assert all(
        seeds == (0, 1) for r, (_, seeds) in rows.items() if not (r.startswith(('K_I=', 'd_I=')) or r == 'k1-nosplit')
    )
    assert cfgs['random-basis', 1].basis == 'random' and cfgs['nosplit', 1].dim_R == 0 and cfgs['full', 0].dim_I == 8
    assert cfgs['mix', 0].mix == 'lu' and cfgs['mix', 0].dim_I == 8


def test_project_root_error(tmp_path):
    with pytest.raises(ValueError, match='no farmer checkout'):
        project_root(tmp_path)


def test_effect_intervals_against_scipy_and_by_hand():
    "Paired: the t-interval of the per-seed differences; Welch: the Welch-Satterthwaite interval; both against scipy."
    from scipy import stats

    a, b = [10.0, 11.0, 12.0, 10.5], [9.0, 9.5, 10.6, 9.9]
    e = effect(a, b, paired=True)
    lo, hi = stats.ttest_rel(a, b).confidence_interval()
    assert abs(e['lo'] - lo) < 1e-9 and abs(e['hi'] - hi) < 1e-9 and e['seeds'] == [4, 4] and e['paired']
    w = effect(a, b)
    lo, hi = stats.ttest_ind(a, b, equal_var=False).confidence_interval()
    assert abs(w['lo'] - lo) < 1e-9 and abs(w['hi'] - hi) < 1e-9
    h = effect([0.5, 0.6, 0.7], [0.7, 0.8, 0.8], paired=True, better='higher')  # consistency rose: positive
    assert h['effect'] > 0 and h['lo'] > 0


def test_verdicts_at_their_boundaries():
    part = lambda lo, hi: dict(effect=(lo + hi) / 2, lo=lo, hi=hi)
    assert [verdict([part(lo, hi)]) for lo, hi in ((1e-9, 1), (-1e-9, 1), (-1, 1e-9), (-1, -1e-9))] == [
        'yes',
        'inconclusive',
        'inconclusive',
        'no',
    ]
    assert verdict([part(0.1, 1), part(-1, -0.1)]) == 'mixed'  # the parts disagree
    assert verdict([part(0.1, 1), part(-1, 1)]) == 'inconclusive' and verdict([part(0.1, 1), part(0.2, 2)]) == 'yes'
    assert verdict([part(-2, -1), part(-1, -0.5)]) == 'no'
    assert verdict([effect([1.0], [0.0])]) == 'inconclusive' and verdict([]) == 'inconclusive'  # one seed: no interval


def test_claims_are_merged_per_dataset_ordered_and_validated():
    a = analysis_setup(fast=True)
    fm = Analysis(True, a.root, 'fashion-mnist')
    up, down = effect([5.0, 6.0, 5.5], [2.0, 2.5, 2.2]), effect([2.0, 2.5, 2.2], [5.0, 6.0, 5.5])
    record_claim(a, CLAIMS[-1], 'last', 'p', 'o', 'w', reproduces='no')
    record_claim(a, CLAIMS[0], 'first', 'p', 'o', 'w', effects={'FID': down})
    record_claim(a, CLAIMS[0], 'first again', 'p', 'o', 'w', effects={'FID': up})  # replaces, does not duplicate
    record_claim(fm, CLAIMS[0], 'first again', 'p', 'fm', 'w', effects={'FID': down})
    rows = claims_table(a.claims).splitlines()
    assert rows[0].count('|') == 6 and 'Fashion-MNIST' in rows[0]
    assert [r.split(' | ')[0] for r in rows[2:]] == ['| first again', '| last']
    assert (
        '**yes**: o; FID +3.27 [' in rows[2]
        and '3 v 3 seeds | **no**: fm' in rows[2]
        and '**no**: o | not measured' in rows[3]
    )
    with pytest.raises(ValueError, match="'yes' or 'no'"):
        record_claim(a, CLAIMS[0], 'c', 'p', 'o', 'w', reproduces='partly')
    with pytest.raises(ValueError, match='either effects'):
        record_claim(a, CLAIMS[0], 'c', 'p', 'o', 'w', effects={'FID': up}, reproduces='yes')
    with pytest.raises(ValueError, match='unknown claim'):
        record_claim(a, 'nope', 'c', 'p', 'o', 'w', reproduces='yes')
    d = json.loads(a.claims.read_text())
    assert (
        set(d['digits']) == {CLAIMS[0], CLAIMS[-1]}
        and d['digits'][CLAIMS[0]]['effects']['FID']['effect'] == up['effect']
    )


def _tiny_run(**kw):
    "A digits-small run small enough to train in seconds."
    return preset('digits-small', af_width=16, ar_width=16, af_layers=1, ar_layers=1, **kw)


def test_ensure_run_trains_reuses_resumes_and_refuses(tmp_path):
    cfg = _tiny_run(steps=12, eval_every=6, warmup=2, batch_size=32)
    run = tmp_path / 'run'
    first = ensure_run(cfg, run, progress=False)
    stamp = (run / 'best.safetensors').stat().st_mtime_ns
    assert (
        ensure_run(cfg, run, progress=False) == first and (run / 'best.safetensors').stat().st_mtime_ns == stamp
    )  # reused
    with pytest.raises(ValueError, match='K_I=8, not 3'):
        ensure_run(cfg.replace(K_I=3), run)
    (run / 'summary.json').unlink()  # cut short after its last checkpoint: resumed
    assert ensure_run(cfg, run, progress=False)['best_val_bpd'] == first['best_val_bpd']


def test_ensure_run_restarts_a_run_stopped_before_its_first_checkpoint(tmp_path):
    "A run killed after its step-0 evaluation (config, metrics, best weights and their copy in evals/, no checkpoint) is trained afresh, not refused."
    cfg = _tiny_run(steps=6, eval_every=3, warmup=1, batch_size=16)
    run = tmp_path / 'run'
    first = ensure_run(cfg, run, progress=False, keep_evals=True)
    for p in (run / 'evals').iterdir():  # the weights of the step-0 evaluation only
        if p.name != 'step000000.safetensors':
            p.unlink()
    for name in ('summary.json', 'test_bpds.safetensors', 'checkpoint.safetensors'):  # the first two: at the end
        (run / name).unlink()
    shutil.rmtree(run / 'figures')  # written at the end
    lines = (run / 'metrics.jsonl').read_text().splitlines()
    (run / 'metrics.jsonl').write_text(lines[0] + '\n')  # the step-0 evaluation only
    (run / 'lock').write_text('pid 999999 on a-node-that-died')  # a kill leaves its lock file behind
    assert ensure_run(cfg, run, progress=False, keep_evals=True)['best_val_bpd'] == first['best_val_bpd']
    assert sorted(p.name for p in (run / 'evals').iterdir()) == [f'step{s:06d}.safetensors' for s in (0, 3, 6)]

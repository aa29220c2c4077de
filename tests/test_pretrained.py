"""The models shipped in data/ (`farmer.runs.PRETRAINED`) and those the analyses keep at budget B in data/budget-B/
(`farmer.analysis.B_MODELS`): each file matches its SHA-256, loads, scores its recorded BPD on its fixed test subset to
1e-3 bits (so a change to the model code that moves the numbers fails here), and `farmer-sample --pretrained` draws
from a shipped one with no training."""

import os
import numpy as np
import pytest
import torch
from conftest import run_cli
from farmer.analysis import B_MODELS, KEPT, b_config
from farmer.runs import DATA_DIR, PRETRAINED, model_manifest, check_split, heldout_bpd, load_pretrained, sha256
from readme import ROOT

SHIPPED = model_manifest()
KEPT_B = model_manifest(ROOT / KEPT)
# every distinct file once: a kept model that is a copy of a shipped one (the chapter model's seed 0) is scored as shipped
MODELS = [(DATA_DIR, n) for n in sorted(SHIPPED)] + [
    (ROOT / KEPT, n) for n in sorted(KEPT_B) if KEPT_B[n]['sha256'] not in {r['sha256'] for r in SHIPPED.values()}
]


def _data_or_skip(name: str) -> None:
    if name != 'digits' and not os.environ.get('FARMER_DATA'):
        pytest.skip(f'the {name} test images are not on this machine (set FARMER_DATA)')


def test_every_shipped_model_is_declared_and_small():
    assert set(SHIPPED) <= set(PRETRAINED), set(SHIPPED) - set(PRETRAINED)
    for name, rec in SHIPPED.items():
        path = DATA_DIR / f'model-{name}.safetensors'
        assert sha256(path) == rec['sha256'] and path.stat().st_size == rec['bytes'], name
        assert rec['bytes'] <= 8_000_000, (name, rec['bytes'])
        assert abs(rec['check_bpd'] - rec['check_bpd_fp32']) < 1e-3, (name, rec)  # what the stored dtype costs


def test_every_kept_model_at_B_is_one_of_B_MODELS_and_small():
    names = {f'{row}-seed{s}' for row, (_, seeds) in B_MODELS.items() for s in seeds}
    assert set(KEPT_B) <= names, set(KEPT_B) - names
    for name, rec in KEPT_B.items():
        path = ROOT / KEPT / f'model-{name}.safetensors'
        assert sha256(path) == rec['sha256'] and path.stat().st_size == rec['bytes'] <= 8_000_000, name
        assert abs(rec['check_bpd'] - rec['check_bpd_fp32']) < 1e-3, (name, rec)
        row, seed = name.rsplit('-seed', 1)
        assert rec['steps'] == b_config(row, int(seed)).recipe.steps, (name, rec)


@pytest.mark.slow
@pytest.mark.parametrize('root,name', MODELS, ids=[f'{r.name}/{n}' for r, n in MODELS])
def test_shipped_model_scores_its_recorded_bpd(root, name):
    _data_or_skip(name)
    rec = model_manifest(root)[name]
    model = load_pretrained(name, root=root)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    subset = check_split(model.cfg, rec['check_images'], os.environ.get('FARMER_DATA'))
    bpd, _ = heldout_bpd(model, subset, workers=0)
    assert abs(bpd - rec['check_bpd']) < 1e-3, (name, bpd, rec['check_bpd'])


@pytest.mark.slow
def test_sample_pretrained_cli(tmp_path):
    if 'digits' not in SHIPPED:
        pytest.skip('no shipped digits model')
    out = tmp_path / 'grid'
    rc, err, _ = run_cli(
        'farmer.cli:sample_main', '--pretrained', 'digits', '--classes', '3,7', '--n', '2', '--out', str(out)
    )
    assert rc == 0, err
    d = np.load(f'{out}.npz')
    assert d['images'].shape == (4, 1, 8, 8) and d['labels'].tolist() == [3, 3, 7, 7]
    cases = {
        ('--pretrained', 'imagenet'): "no shipped model 'imagenet'",
        (): 'give a run directory (--run DIR) or a shipped model (--pretrained NAME)',
        ('--pretrained', 'digits', '--run', 'runs/x'): 'one of the two',
        ('--pretrained', 'digits', '--decoder', 'student'): '--decoder student needs the student of a run',
    }
    for args, msg in cases.items():
        rc, err, _ = run_cli('farmer.cli:sample_main', *args)
        assert rc == 2 and len(err) == 1 and msg in err[0], (args, err)

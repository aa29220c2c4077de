import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from farmer.config import FarmerConfig
from farmer.runtime import save_checkpoint, load_checkpoint
from farmer.train import train, lr_at, make_batch, global_indices
from farmer.data import load_dataset
from conftest import run_cli

TRAIN = [sys.executable, '-m', 'farmer.train', '--no-progress']
SMALL = ['--steps', '120', '--eval-every', '20', '--batch-size', '64', '--warmup', '10', '--af-width', '32', '--ar-width', '32', '--af-layers', '1']

def _metrics(run: Path) -> list[dict]:
    recs = [json.loads(l) for l in (run / 'metrics.jsonl').read_text().splitlines()]
    for r in recs: r.pop('images_per_s', None)
    return recs

def test_schedules_and_data_order():
    cfg = FarmerConfig.preset('digits-small', steps=1000, warmup=100)
    assert lr_at(0, cfg) == cfg.lr / 100 and lr_at(99, cfg) == cfg.lr and abs(lr_at(1000, cfg) - cfg.lr_min) < 1e-12
    x, y = load_dataset('digits')
    per_epoch = [global_indices(s, len(x), cfg) for s in range(len(x) // cfg.batch_size)]
    assert len(torch.cat(per_epoch).unique()) == len(x) // cfg.batch_size * cfg.batch_size   # no repeats in an epoch
    a, b = make_batch(3, x, y, cfg), make_batch(3, x, y, cfg)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])

def test_resume_after_sigkill_is_exact(tmp_path):
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    subprocess.run(TRAIN + SMALL + ['--out', str(full)], check=True, capture_output=True)
    p = subprocess.Popen(TRAIN + SMALL + ['--out', str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:                                  # kill between two checkpoints (at 40 and 60)
        m = killed / 'metrics.jsonl'
        if m.exists() and any(json.loads(l)['step'] >= 45 for l in m.read_text().splitlines() if l.endswith('}')): break
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL and not (killed / 'summary.json').exists()
    done = subprocess.run(TRAIN + ['--resume', str(killed)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _metrics(killed) == _metrics(full)                       # step for step, evaluations included
    a, b = load_file(full / 'checkpoint.safetensors'), load_file(killed / 'checkpoint.safetensors')
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith(('model.', 'opt.')))
    s = json.loads((full / 'summary.json').read_text())
    assert s['best_heldout_bpd'] < s['init_heldout_bpd'] - 0.5

def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / 'ck.safetensors'
    save_checkpoint(path, {'w': torch.ones(3)}, {'step': 1})
    import farmer.runtime as rt
    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b'partial'); raise KeyboardInterrupt
    monkeypatch.setattr(rt, 'save_file', crash)
    with pytest.raises(KeyboardInterrupt): save_checkpoint(path, {'w': torch.zeros(3)}, {'step': 2})
    t, m = load_checkpoint(path)
    assert m == {'step': 1} and torch.equal(t['w'], torch.ones(3))

def _cli(*args):
    return run_cli('farmer.train:main', '--no-progress', *args)[:2]

def test_bad_input_one_line_exit_2(tmp_path):
    run = tmp_path / 'run'
    subprocess.run(TRAIN + ['--steps', '4', '--eval-every', '2', '--batch-size', '16', '--out', str(run)], check=True, capture_output=True)
    before = {f: f.read_bytes() for f in run.rglob('*') if f.is_file()}
    cases = {
        ('--preset', 'nope'): "unknown preset 'nope'",
        ('--bogus', '3'): 'unrecognized arguments: --bogus',
        ('--steps', 'many'): "invalid int value: 'many'",
        ('--out', str(run)): 'is not empty; pass --resume',
        ('--resume', str(tmp_path / 'missing')): 'does not exist',
        ('--resume', str(run), '--K-I', '3'): 'was trained with K_I=32, not 3',
        ('--patch', '3'): 'not divisible by patch 3',
        ('--dequant', 'logistic'): "dequant must be 'gaussian' or 'uniform', got 'logistic'",
        ('--preset', 'fashion-mnist', '--data-root', str(tmp_path / 'nodata'), '--out', str(tmp_path / 'fm')): 'FashionMNIST/raw/t',
    }
    for args, msg in cases.items():
        rc, err = _cli(*args)
        assert rc == 2 and len(err) == 1 and msg in err[0], (args, err)
    (run / 'checkpoint.safetensors').write_bytes(b'garbage')
    rc, err = _cli('--resume', str(run))
    assert rc == 2 and len(err) == 1 and 'is corrupt or not a farmer checkpoint' in err[0]
    after = {f: f.read_bytes() for f in run.rglob('*') if f.is_file()}
    assert after.keys() == before.keys()
    assert all(after[f] == before[f] for f in before if f.name != 'checkpoint.safetensors')   # nothing overwritten

def test_uniform_dequantisation_recipe():
    "With dequant='uniform' a training batch is the bin plus U[0, 1) noise: it never leaves its bin, and σ is 0."
    x, y = load_dataset('digits')
    cfg = FarmerConfig.preset('digits', dequant='uniform')
    xb, _, sigma = make_batch(5, x, y, cfg)
    idx = global_indices(5, len(x), cfg)
    from farmer.data import to_uint8, to_model_space
    assert sigma == 0.0 and torch.equal(to_uint8(xb), x[idx])
    assert (xb - to_model_space(x[idx])).abs().max() > 0.3 * 2 / 256       # noise spreads over the bin
    xg, _, sg = make_batch(5, x, y, cfg.replace(dequant='gaussian'))
    assert sg > 0.05 and not torch.equal(to_uint8(xg), x[idx])             # Gaussian noise σ ≫ one bin leaves it

def test_torchrun_two_processes_match_one(tmp_path):
    if shutil.which('torchrun') is None and not (Path(sys.executable).parent / 'torchrun').exists(): pytest.skip('no torchrun')
    torchrun = shutil.which('torchrun') or str(Path(sys.executable).parent / 'torchrun')
    cfg = FarmerConfig.preset('digits-small', steps=8, eval_every=4, batch_size=32, warmup=2)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    r = subprocess.run([torchrun, '--standalone', '--nproc_per_node=2', str(Path(__file__).parent / 'ddp_worker.py'),
                        str(tmp_path / 'ddp'), json.dumps(cfg.to_dict())], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    w0, w1 = load_file(tmp_path / 'ddp' / 'rank0.safetensors'), load_file(tmp_path / 'ddp' / 'rank1.safetensors')
    assert all(torch.equal(w0[k], w1[k]) for k in w0)                 # both ranks end with identical weights
    _, single = train(cfg, tmp_path / 'one', device='cpu', progress=False)
    ddp, one = [m for m in _metrics(tmp_path / 'ddp') if 'loss' in m], [m for m in _metrics(tmp_path / 'one') if 'loss' in m]
    assert len(ddp) == len(one) == 8
    for a, b in zip(ddp, one):
        assert abs(a['loss'] - b['loss']) < 1e-4 * abs(b['loss']) + 1e-6, (a, b)
    assert all(torch.allclose(w0[k], single.state_dict()[k], atol=1e-4) for k in w0)

def test_non_finite_steps_are_skipped_and_counted(tmp_path, monkeypatch):
    from farmer.model import Farmer
    orig, calls = Farmer.forward, {'n': 0}
    def poisoned(self, x, y=None):
        out = orig(self, x, y)
        if self.training:
            calls['n'] += 1
            if calls['n'] == 3: out['loss'] = out['loss'] * float('nan')
        return out
    monkeypatch.setattr(Farmer, 'forward', poisoned)
    cfg = FarmerConfig.preset('digits-small', steps=5, eval_every=5, batch_size=16, warmup=1)
    summary, model = train(cfg, tmp_path / 'run', progress=False)
    recs = [r for r in _metrics(tmp_path / 'run') if 'loss' in r]
    assert [r['skipped'] for r in recs] == [0, 0, 1, 1, 1] and summary['skipped_steps'] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())

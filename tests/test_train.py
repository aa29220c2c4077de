import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from farmer.config import FarmerConfig, preset
from farmer.model import Farmer
from farmer.data import open_dataset, to_uint8, to_model_space
from farmer.imagenet import fake_imagenet
from farmer.loop import lr_at, global_indices, rank_rows
from farmer.runtime import save_checkpoint, load_checkpoint, read_jsonl
from farmer.train import train, make_batch
from farmer.runs import heldout_bpd, load_run_model
from conftest import run_cli, TRAIN, ONE_THREAD, SMALL, metrics_of as _metrics

TINY_IMAGENET = [
    '--preset',
    'imagenet256-1.1b',
    '--image-size',
    '32',
    '--patch',
    '8',
    '--d-I',
    '16',
    '--af-blocks',
    '2',
    '--af-layers',
    '1',
    '--af-width',
    '32',
    '--af-heads',
    '2',
    '--ar-layers',
    '1',
    '--ar-width',
    '32',
    '--ar-heads',
    '2',
    '--K-I',
    '2',
    '--K-R',
    '2',
    '--cond-repeat',
    '2',
    '--batch-size',
    '8',
    '--val-images',
    '6',
    '--warmup',
    '1',
]


def test_schedules_and_data_order():
    cfg = preset('digits-small', steps=1000, warmup=100)
    r = cfg.recipe
    assert lr_at(0, r) == r.lr / 100 and lr_at(99, r) == r.lr and abs(lr_at(1000, r) - r.lr_min) < 1e-12
    ds = open_dataset('digits', 'train', val_images=cfg.val_images)
    per_epoch = [global_indices(s, len(ds), r) for s in range(len(ds) // r.batch_size)]
    assert len(torch.cat(per_epoch).unique()) == len(ds) // r.batch_size * r.batch_size  # no repeats in an epoch
    rows = rank_rows(r)
    a, b = (make_batch(3, *ds.batch(global_indices(3, len(ds), r)), rows, cfg) for _ in range(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_head_lr_scales_only_the_heads_and_resume_is_exact(tmp_path):
    from farmer.loop import make_optimizer, is_head

    cfg = preset('digits-small', steps=8, eval_every=4, warmup=2, head_lr=1e-6)
    m0 = Farmer(cfg)
    opt = make_optimizer(m0, cfg.recipe)
    grouped = [(p, g['lr_scale']) for g in opt.param_groups for p in g['params']]
    named = dict(m0.named_parameters())
    assert len(grouped) == len(named) and {id(p) for p, _ in grouped} == {id(p) for p in named.values()}
    heads = {id(p) for n, p in named.items() if is_head(n)}
    assert heads and all((id(p) in heads) == (s == 1e-6) for p, s in grouped)
    assert len(make_optimizer(m0, preset('digits-small').recipe).param_groups) == 2  # older checkpoints' two groups
    _, full = train(cfg, tmp_path / 'full', device='cpu', progress=False)
    train(cfg, tmp_path / 'cut', stop_at=4, device='cpu', progress=False)
    _, cut = train(cfg, tmp_path / 'cut', resume=True, device='cpu', progress=False)
    torch.manual_seed(cfg.recipe.seed)
    init = Farmer(cfg).state_dict()  # the weights the runs started from (train seeds the same way)
    moved = {}
    for n, w in full.state_dict().items():
        assert torch.equal(w, cut.state_dict()[n]), n  # the head groups resume exactly too
        if n in named:
            moved.setdefault(is_head(n), []).append((w - init[n]).abs().max().item())
    assert max(moved[True]) < 1e-7 < 1e-3 < max(moved[False])  # Adam moves a weight about lr per step


def test_a_checkpoint_older_than_a_field_resumes_with_its_default(tmp_path):
    cfg = preset('digits-small', steps=8, eval_every=4, warmup=2)
    train(cfg, tmp_path / 'run', stop_at=4, device='cpu', progress=False)
    ck = tmp_path / 'run' / 'checkpoint.safetensors'
    tensors, meta = load_checkpoint(ck)
    save_checkpoint(ck, tensors, dict(meta, config={k: v for k, v in meta['config'].items() if k != 'head_lr'}))
    s, _ = train(cfg, tmp_path / 'run', resume=True, device='cpu', progress=False)  # written before head_lr existed
    assert s['steps'] == 8
    with pytest.raises(ValueError, match='head_lr=1.0, not 0.5'):  # but not into another value of it
        train(cfg.replace(head_lr=0.5), tmp_path / 'run', resume=True, device='cpu', progress=False)


def _kill_between_checkpoints(cmd: list[str], run: Path, after: int):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ONE_THREAD)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:  # kill between two checkpoints
        m = run / 'metrics.jsonl'
        if m.exists() and any(json.loads(l)['step'] >= after for l in m.read_text().splitlines() if l.endswith('}')):
            break
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL and not (run / 'summary.json').exists()


@pytest.mark.slow
def test_resume_after_sigkill_is_exact(tmp_path, small_run):
    full, killed = small_run, tmp_path / 'killed'
    _kill_between_checkpoints(TRAIN + SMALL + ['--out', str(killed)], killed, 45)
    done = subprocess.run(TRAIN + ['--resume', str(killed)], capture_output=True, text=True, env=ONE_THREAD)
    assert done.returncode == 0, done.stderr
    assert _metrics(killed) == _metrics(full)  # step for step, evaluations included
    a, b = load_file(full / 'checkpoint.safetensors'), load_file(killed / 'checkpoint.safetensors')
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith(('model.', 'opt.')))
    s = json.loads((full / 'summary.json').read_text())
    assert s['best_val_bpd'] < s['init_val_bpd'] - 0.5 and s['images_per_s'] > 0 and 'images/s' in done.stdout


@pytest.mark.slow
def test_a_run_trained_under_bf16_is_scored_in_fp32(tmp_path, monkeypatch):
    "Held-out BPD is scored in fp32 whatever the training precision: under bf16 autocast it read 0.03 bits high on an H200."
    import inspect, farmer.train as T, farmer.runs as R
    from farmer.runs import load_pretrained

    score, used = R.heldout_bpds, []
    default = inspect.signature(score).parameters['precision'].default
    counted = lambda model, ds, *a, **k: used.append(k.get('precision', default)) or score(model, ds, *a, **k)
    monkeypatch.setattr(R, 'heldout_bpds', counted)
    monkeypatch.setattr(T, 'heldout_bpds', counted)
    train(
        preset('digits-small', steps=4, eval_every=2, warmup=1),
        tmp_path / 'run',
        device='cpu',
        progress=False,
        precision='bf16',
    )
    assert used == ['fp32'] * 4  # validation at steps 0, 2 and 4, the test once
    model, test = load_pretrained('digits'), open_dataset('digits', 'test').subset(range(100))
    fp32, auto, bf16 = (
        heldout_bpd(model, test, workers=0, **k)[0] for k in (dict(precision='fp32'), {}, dict(precision='bf16'))
    )
    assert auto == fp32 and abs(bf16 - fp32) > 0.01  # the default is fp32, and bf16 would move a trained model's score


def test_best_checkpoint_follows_validation_and_test_is_scored_once(tmp_path, monkeypatch):
    import farmer.train as T, farmer.runs as R

    seen = []
    score = R.heldout_bpds  # every held-out score goes through it (validation via heldout_bpd, the test via _finish)
    counted = lambda model, ds, *a, **k: seen.append(len(ds)) or score(model, ds, *a, **k)
    monkeypatch.setattr(R, 'heldout_bpds', counted)
    monkeypatch.setattr(T, 'heldout_bpds', counted)
    cfg = preset('digits-small', steps=60, eval_every=10, warmup=5, lr=3e-3)
    s, _ = train(cfg, tmp_path / 'run', progress=False)
    evals = [r for r in read_jsonl(tmp_path / 'run' / 'metrics.jsonl') if 'val_bpd' in r]
    best = min(evals, key=lambda r: r['val_bpd'])
    assert (s['best_step'], s['best_val_bpd']) == (best['step'], best['val_bpd'])
    assert load_checkpoint(tmp_path / 'run' / 'best.safetensors')[1]['step'] == best['step']
    assert seen == [300] * len(evals) + [297]  # validation at every evaluation, the test split once, at the end
    assert abs(heldout_bpd(load_run_model(tmp_path / 'run'), open_dataset('digits', 'test'))[0] - s['test_bpd']) < 1e-6


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / 'ck.safetensors'
    save_checkpoint(path, {'w': torch.ones(3)}, {'step': 1})
    import farmer.runtime as rt

    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b'partial')
        raise KeyboardInterrupt

    monkeypatch.setattr(rt, 'save_file', crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {'w': torch.zeros(3)}, {'step': 2})
    t, m = load_checkpoint(path)
    assert m == {'step': 1} and torch.equal(t['w'], torch.ones(3))


def _cli(*args):
    return run_cli('farmer.train:train_main', '--no-progress', *args)[:2]


@pytest.mark.slow
def test_bad_input_one_line_exit_2(tmp_path):
    run = tmp_path / 'run'
    subprocess.run(
        TRAIN + ['--steps', '4', '--eval-every', '2', '--batch-size', '16', '--out', str(run)],
        check=True,
        capture_output=True,
    )
    before = {f: f.read_bytes() for f in run.rglob('*') if f.is_file()}
    cases = {
        ('--preset', 'nope'): "unknown preset 'nope'",
        ('--bogus', '3'): 'unrecognized arguments: --bogus',
        ('--steps', 'many'): "invalid int value: 'many'",
        ('--out', str(run)): 'is not empty; pass --resume',
        ('--resume', str(tmp_path / 'missing')): 'does not exist',
        ('--resume', str(run), '--K-I', '3'): 'was written with K_I=32, not 3',
        ('--patch', '3'): 'not divisible by patch 3',
        ('--dequant', 'logistic'): "dequant must be 'gaussian' or 'uniform', got 'logistic'",
        (
            '--val-images',
            '1470',
            '--out',
            str(tmp_path / 'v'),
        ): 'val_images=1470 leaves 30 training images, fewer than one batch of 64',
        ('--val-images', '1500', '--out', str(tmp_path / 'v')): 'val_images must be in 0..1499',
        ('--precision', 'fp16'): "invalid choice: 'fp16'",
        (
            '--preset',
            'fashion-mnist',
            '--data-root',
            str(tmp_path / 'nodata'),
            '--out',
            str(tmp_path / 'fm'),
        ): 'FashionMNIST/raw/t',
        (
            '--preset',
            'imagenet256-1.1b',
            '--data-root',
            str(tmp_path / 'nodata'),
            '--out',
            str(tmp_path / 'in'),
        ): 'must hold train/<wnid>/*.JPEG',
        (
            '--preset',
            'imagenet64-556m',
            '--data-root',
            str(tmp_path / 'nodata'),
            '--out',
            str(tmp_path / 'in'),
        ): 'official Imagenet64_train_npz/',
    }
    for args, msg in cases.items():
        rc, err = _cli(*args)
        assert rc == 2 and len(err) == 1 and msg in err[0], (args, err)
    (run / 'checkpoint.safetensors').write_bytes(b'garbage')
    rc, err = _cli('--resume', str(run))
    assert rc == 2 and len(err) == 1 and 'is corrupt or not a farmer checkpoint' in err[0]
    after = {f: f.read_bytes() for f in run.rglob('*') if f.is_file()}
    assert after.keys() == before.keys()
    assert all(after[f] == before[f] for f in before if f.name != 'checkpoint.safetensors')  # nothing overwritten
    assert not (tmp_path / 'v').exists() and not (tmp_path / 'in').exists()


def test_uniform_dequantisation_recipe():
    "With dequant='uniform' a training batch is the bin plus U[0, 1) noise: it never leaves its bin, and σ is 0."
    cfg = preset('digits', dequant='uniform')
    ds = open_dataset('digits', 'train', val_images=cfg.val_images)
    x8, y = ds.batch(global_indices(5, len(ds), cfg.recipe))
    xb, _, sigma = make_batch(5, x8, y, rank_rows(cfg.recipe), cfg)
    assert sigma == 0.0 and torch.equal(to_uint8(xb), x8)
    assert (xb - to_model_space(x8)).abs().max() > 0.3 * 2 / 256  # noise spreads over the bin
    xg, _, sg = make_batch(5, x8, y, rank_rows(cfg.recipe), cfg.replace(dequant='gaussian'))
    assert sg > 0.05 and not torch.equal(to_uint8(xg), x8)  # Gaussian noise σ ≫ one bin leaves it


def _torchrun():
    if shutil.which('torchrun') is None and not (Path(sys.executable).parent / 'torchrun').exists():
        pytest.skip('no torchrun')
    return shutil.which('torchrun') or str(Path(sys.executable).parent / 'torchrun')


def torchrun_two(worker: str, *args: str, timeout: int = 600) -> None:
    "Run the script `tests/<worker>` with `args` under `torchrun --nproc_per_node=2` (gloo, one thread each); fail on an error."
    r = subprocess.run(
        [_torchrun(), '--standalone', '--nproc_per_node=2', str(Path(__file__).parent / worker), *args],
        capture_output=True,
        text=True,
        env=ONE_THREAD,
        timeout=timeout,
    )
    assert r.returncode == 0, r.stderr[-2000:]


def train_ddp(out: Path, cfg: FarmerConfig, **train_kw) -> tuple[dict, dict]:
    "Train `cfg` into `out` under `torchrun --nproc_per_node=2` (gloo); the weights of rank 0 and rank 1."
    torchrun_two('ddp_worker.py', str(out), json.dumps(cfg.to_dict()), json.dumps(train_kw))
    return load_file(out / 'rank0.safetensors'), load_file(out / 'rank1.safetensors')


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path):
    cfg = preset('digits-small', steps=8, eval_every=4, batch_size=32, warmup=2)
    w0, w1 = train_ddp(tmp_path / 'ddp', cfg)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)  # both ranks end with identical weights
    _, single = train(cfg, tmp_path / 'one', device='cpu', progress=False)
    ddp, one = (
        [m for m in _metrics(tmp_path / 'ddp') if 'loss' in m],
        [m for m in _metrics(tmp_path / 'one') if 'loss' in m],
    )
    assert len(ddp) == len(one) == 8
    for a, b in zip(ddp, one):
        assert abs(a['loss'] - b['loss']) < 1e-4 * abs(b['loss']) + 1e-6, (a, b)
    assert all(torch.allclose(w0[k], single.state_dict()[k], atol=1e-4) for k in w0)


@pytest.mark.slow
def test_imagenet_layout_under_torchrun_reads_disjoint_images(tmp_path):
    root = fake_imagenet(tmp_path / 'imagenet', per_class=8)
    cfg = preset('imagenet256-1.1b', **_flags_to_overrides(TINY_IMAGENET[2:]), steps=2, eval_every=2)
    train_ddp(tmp_path / 'ddp', cfg, data_root=str(root))
    r0, r1 = (json.loads((tmp_path / 'ddp' / f'read{r}.json').read_text())[1:] for r in (0, 1))  # [0]: the shape check
    assert not set(r0) & set(r1)  # no image, trained on or scored, is read by both ranks
    # rank 1: its share of the validation images (scored at steps 0 and 2), two steps of 4 training images, its share of test
    k = (len(r1) - 2 * 4) // 3
    assert k > 0 and len(r1) == 3 * k + 8 and r1[:k] == r1[k + 8 : 2 * k + 8]
    assert all('/train/' in p for p in r1[: 2 * k + 8]) and all('/val/' in p for p in r1[2 * k + 8 :])


def _flags_to_overrides(flags: list[str]) -> dict:
    from farmer.train import train_parser, config_from_args

    return {
        k: v
        for k, v in config_from_args(train_parser().parse_args(['--preset', 'imagenet256-1.1b', *flags]))[0]
        .to_dict()
        .items()
        if v != preset('imagenet256-1.1b').to_dict()[k]
    }


@pytest.mark.slow
def test_imagenet_layout_resume_after_sigkill_is_exact(tmp_path):
    root = fake_imagenet(tmp_path / 'imagenet', per_class=8)
    flags = TINY_IMAGENET + ['--data-root', str(root), '--steps', '12', '--eval-every', '4', '--workers', '2']
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    subprocess.run(TRAIN + flags + ['--out', str(full)], check=True, capture_output=True, env=ONE_THREAD)
    _kill_between_checkpoints(TRAIN + flags + ['--out', str(killed)], killed, 6)
    done = subprocess.run(
        TRAIN + ['--resume', str(killed), '--data-root', str(root), '--workers', '2'],
        capture_output=True,
        text=True,
        env=ONE_THREAD,
    )
    assert done.returncode == 0, done.stderr
    assert _metrics(killed) == _metrics(full)


def _peak_rss_mib(root: Path, out: Path) -> float:
    code = (
        "import sys, json; from farmer.train import train_main; train_main(json.loads(sys.argv[1])); "
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    flags = [
        *TINY_IMAGENET,
        '--image-size',
        '256',
        '--patch',
        '64',
        '--d-I',
        '64',
        '--data-root',
        str(root),
        '--steps',
        '3',
        '--eval-every',
        '3',
        '--workers',
        '0',
        '--no-progress',
        '--out',
        str(out),
    ]  # later flags override earlier ones
    r = subprocess.run([sys.executable, '-c', code, json.dumps(flags)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return int(r.stdout.strip().splitlines()[-1]) / 1024


@pytest.mark.slow
@pytest.mark.skipif(not Path('/proc/self/status').exists(), reason='peak RSS from /proc (Linux)')
def test_streamed_memory_is_flat_in_the_dataset_size(tmp_path):
    "60 vs 1,800 ImageNet-layout JPEGs at 256x256: held in memory, the extra 1,740 images alone would be 342 MB."
    small = _peak_rss_mib(fake_imagenet(tmp_path / 'small', per_class=20), tmp_path / 'a')
    large = _peak_rss_mib(fake_imagenet(tmp_path / 'large', per_class=600), tmp_path / 'b')
    assert large - small < 150, (small, large)  # the peak RSS of one run varies by up to ~115 MB from run to run


@pytest.mark.slow
def test_non_finite_steps_are_skipped_and_counted(tmp_path, monkeypatch):
    from farmer.model import Farmer

    orig, calls = Farmer.forward, {'n': 0}

    def poisoned(self, x, y=None):
        out = orig(self, x, y)
        if self.training:
            calls['n'] += 1
            if calls['n'] == 3:
                out['loss'] = out['loss'] * float('nan')
        return out

    monkeypatch.setattr(Farmer, 'forward', poisoned)
    cfg = preset('digits-small', steps=5, eval_every=5, batch_size=16, warmup=1)
    summary, model = train(cfg, tmp_path / 'run', progress=False)
    recs = [r for r in _metrics(tmp_path / 'run') if 'loss' in r]
    assert [r['skipped'] for r in recs] == [0, 0, 1, 1, 1] and summary['skipped_steps'] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.slow
def test_compiled_and_eager_losses_agree_and_compile_falls_back(tmp_path, monkeypatch, capsys):
    from farmer.model import Farmer

    cfg = preset('digits-small', af_width=16, ar_width=16, af_layers=1, ar_layers=1, af_blocks=2)
    torch.manual_seed(0)
    m = Farmer(cfg)
    ds = open_dataset('digits', 'train', val_images=cfg.val_images)
    x, y, _ = make_batch(0, *ds.batch(torch.arange(32)), torch.arange(32), cfg)
    eager = m(x, y)
    compiled = torch.compile(m)(x, y)
    assert all(
        torch.allclose(compiled[k], eager[k], rtol=1e-5, atol=1e-5) for k in ('loss', 'nll_I', 'nll_R', 'logdet')
    )
    import farmer.train as T

    def broken(module, **kw):
        def call(*a, **k):
            raise RuntimeError('no C++ compiler (simulated)')

        return call

    monkeypatch.setattr(T.torch, 'compile', broken)
    s, _ = train(cfg.replace(steps=4, eval_every=2), tmp_path / 'run', progress=False, compile=True)
    err = capsys.readouterr().err
    assert (
        s['skipped_steps'] == 0
        and err.count('torch.compile failed here (RuntimeError: no C++ compiler (simulated)); running eagerly') == 1
    )


@pytest.mark.slow
def test_one_process_keeps_compiling_model_after_model(tmp_path, monkeypatch):
    "The analyses train many models in one process (`ensure_run`): each `train(compile=True)` starts dynamo afresh, so no model runs eagerly for having passed dynamo's recompile limit (without the reset the second one here does)."
    import logging

    monkeypatch.setattr(torch._dynamo.config, 'recompile_limit', 1)
    hits, handler, logger = [], logging.Handler(), logging.getLogger('torch._dynamo')
    handler.emit = lambda record: hits.append(record.getMessage())
    logger.addHandler(handler)
    try:
        for mix in ('none', 'lu'):  # two models whose forward takes a different branch: a second compiled variant
            cfg = preset('digits-small', af_width=16, ar_width=16, af_layers=1, ar_layers=1, mix=mix, val_images=10)
            train(cfg.replace(steps=2, eval_every=2, warmup=1), tmp_path / mix, progress=False, compile=True)
    finally:
        logger.removeHandler(handler)
    assert not [h for h in hits if 'recompile_limit' in h], hits


def test_a_checkpoint_gets_the_mode_of_any_new_file(tmp_path):
    "safetensors writes owner-only files; a checkpoint gets what `open` gives under the umask, so a team can read it."
    save_checkpoint(tmp_path / 'ck.safetensors', {'w': torch.ones(3)}, {})
    (tmp_path / 'plain').write_text('')
    mode = lambda name: (tmp_path / name).stat().st_mode & 0o777
    assert mode('ck.safetensors') == mode('plain')

"""What the paper-scale path needs, checked on CPU: the redundant mixture's log-density without `[B, N, K, d]`
temporaries, held-out scoring shared by torchrun ranks, activation checkpointing, an average of the weights that resumes
exactly, and TensorBoard logging."""

import importlib.util
import pytest, torch
from safetensors.torch import load_file
from farmer.config import preset
from farmer.gmm import GMM
from farmer.model import Farmer
from farmer.transformer import Transformer
from farmer.runs import heldout_bpds, run_splits, load_run_model
from farmer.train import train
from conftest import metrics_of
from test_train import torchrun_two, train_ddp


def _shared_case(dtype, B=2, N=9, K=4, d=5):
    g = torch.Generator().manual_seed(1)
    t = lambda *s, a=0.0, m=1.0: (a + m * torch.randn(*s, generator=g, dtype=dtype)).requires_grad_()
    return GMM(t(B, K), t(B, K, d, a=-2.0), t(B, K, d, m=0.7)), t(B, N, d, a=-2.0)


def test_log_prob_rows_is_the_d_wide_form_in_fp64_values_and_gradients():
    g, z = _shared_case(torch.float64)
    new, old = g.log_prob_rows(z), g.expand(z.shape[1]).log_prob(z)
    assert new.shape == (2, 9) and torch.allclose(new, old, atol=1e-12, rtol=0)
    leaves = (z, g.logits, g.mean, g.log_sigma)
    for a, b in zip(torch.autograd.grad(new.sum(), leaves), torch.autograd.grad(old.sum(), leaves)):
        assert torch.allclose(a, b, atol=1e-10, rtol=0)
    g32 = GMM(*(t.detach().float() for t in (g.logits, g.mean, g.log_sigma)))
    assert torch.allclose(g32.log_prob_rows(z.detach().float()).double(), old.detach(), atol=1e-4, rtol=0)


def test_the_shared_redundant_head_scores_with_log_prob_rows(monkeypatch):
    cfg = preset('digits', d_I=2)
    torch.manual_seed(0)
    m, x = Farmer(cfg).double(), torch.rand(4, 1, 8, 8, dtype=torch.float64) * 2 - 1
    fast = m(x, torch.arange(4))['nll']
    d_wide = lambda self, g, z_R: -g.expand(z_R.shape[1]).log_prob(z_R).sum(1)
    monkeypatch.setattr(type(m.ar.head_R), 'nll', d_wide)
    assert torch.allclose(m(x, torch.arange(4))['nll'], fast, atol=1e-9, rtol=0)


def test_activation_checkpointing_gives_the_same_loss_and_gradients():
    x, y = torch.rand(6, 1, 8, 8) * 2 - 1, torch.arange(6)
    out = []
    for ck in (False, True):
        torch.manual_seed(0)
        m = Farmer(preset('digits', d_I=2, checkpointing=ck))
        loss = m(x, y)['loss']
        loss.backward()
        out.append((loss.detach(), [p.grad for p in m.parameters()]))
    (l0, g0), (l1, g1) = out
    assert torch.allclose(l0, l1, atol=1e-6, rtol=0)
    assert all(torch.allclose(a, b, atol=1e-6, rtol=0) for a, b in zip(g0, g1))
    nets = [t for t in m.modules() if isinstance(t, Transformer)]
    assert len(nets) == m.cfg.af_blocks + 1 and all(t.checkpointing for t in nets)  # every AF block's, and the AR's


@pytest.mark.slow
def test_two_gloo_processes_score_each_image_as_one_process(tmp_path):
    images, batch = 41, 6  # ranks of 21 and 20 images, in batches that split neither evenly
    torchrun_two('score_worker.py', str(tmp_path), str(images), str(batch), timeout=300)
    torch.manual_seed(0)
    model = Farmer(preset('digits-small'))
    one = heldout_bpds(model, run_splits(model.cfg)['val'].subset(range(images)), batch=500, workers=0)
    for rank in (0, 1):
        got = load_file(tmp_path / f'rank{rank}.safetensors')['bpd']
        assert got.shape == (images,) and torch.allclose(got, one, atol=1e-5, rtol=0), rank


def test_the_average_of_the_weights_is_kept_scored_and_resumed_exactly(tmp_path):
    cfg = preset('digits-small', steps=8, eval_every=4, warmup=2, ema=0.8)
    s, full = train(cfg, tmp_path / 'full', device='cpu', progress=False)
    assert {'best_val_bpd_ema', 'test_bpd_ema'} <= set(s) and s['best_val_bpd_ema'] != s['best_val_bpd']
    train(cfg, tmp_path / 'cut', stop_at=5, device='cpu', progress=False)
    train(cfg, tmp_path / 'cut', resume=True, device='cpu', progress=False)
    for which in ('checkpoint', 'best'):
        a, b = (load_run_model(tmp_path / r, which, ema=True).state_dict() for r in ('full', 'cut'))
        assert all(torch.equal(a[k], b[k]) for k in a), which
    raw = load_run_model(tmp_path / 'full', 'checkpoint').state_dict()
    avg = load_run_model(tmp_path / 'full', 'checkpoint', ema=True).state_dict()
    assert any(not torch.equal(raw[k], avg[k]) for k in raw)  # an average, not a copy
    plain = preset('digits-small', steps=2, eval_every=2, warmup=1)
    train(plain, tmp_path / 'plain', device='cpu', progress=False)
    with pytest.raises(ValueError, match='trained without an average of its weights'):
        load_run_model(tmp_path / 'plain', ema=True)


def test_tensorboard_holds_the_scalars_and_the_samples(tmp_path):
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = preset('digits-small', steps=6, eval_every=3, warmup=1)
    train(cfg, tmp_path / 'run', device='cpu', progress=False, tensorboard=True)
    ev = EventAccumulator(str(tmp_path / 'run' / 'tensorboard'), size_guidance={'scalars': 0, 'images': 0})
    ev.Reload()
    tags = set(ev.Tags()['scalars'])
    assert {'loss', 'val_bpd', 'lr', 'grad_norm', 'skipped', 'images_per_s'} <= tags
    assert [e.step for e in ev.Scalars('loss')] == list(range(1, 7))
    assert [e.step for e in ev.Scalars('val_bpd')] == [0, 3, 6]
    assert [e.step for e in ev.Images('samples')] == [0, 3, 6]


def _losses(run) -> list[float]:
    return [m['loss'] for m in metrics_of(run) if 'loss' in m]


@pytest.mark.slow
def test_fsdp_on_two_gloo_processes_matches_ddp_and_resumes_exactly(tmp_path):
    cfg = preset('digits-small', steps=6, eval_every=3, batch_size=32, warmup=2)
    ddp, _ = train_ddp(tmp_path / 'ddp', cfg)
    board = (
        dict(tensorboard=True) if importlib.util.find_spec('tensorboard') else {}
    )  # samples from sharded weights too
    f0, f1 = train_ddp(tmp_path / 'fsdp', cfg, shard='fsdp', **board)
    assert all(torch.equal(f0[k], f1[k]) for k in f0)  # both ranks gather the same whole weights
    assert all(torch.allclose(f0[k], ddp[k], atol=1e-5, rtol=0) for k in ddp), 'FSDP and DDP part ways'
    assert all(abs(a - b) < 1e-5 * abs(b) + 1e-6 for a, b in zip(_losses(tmp_path / 'fsdp'), _losses(tmp_path / 'ddp')))
    train_ddp(tmp_path / 'cut', cfg, shard='fsdp', stop_at=4)  # killed between two checkpoints, resumed under FSDP
    c0, _ = train_ddp(tmp_path / 'cut', cfg, shard='fsdp', resume=True)
    assert all(torch.equal(c0[k], f0[k]) for k in f0)
    assert _losses(tmp_path / 'cut') == _losses(tmp_path / 'fsdp')


@pytest.mark.slow
def test_gradient_accumulation_gives_the_step_of_the_whole_batch(tmp_path):
    cfg = preset('digits-small', steps=6, eval_every=3, batch_size=32, warmup=2)
    _, one = train(cfg, tmp_path / 'one', device='cpu', progress=False)
    _, acc = train(cfg.replace(accum=4), tmp_path / 'acc', device='cpu', progress=False)
    d0, d1 = train_ddp(tmp_path / 'ddp', cfg.replace(accum=2))  # two ranks of two micro-batches of 8
    for w in (acc.state_dict(), d0):
        assert all(torch.allclose(w[k], v, atol=1e-5, rtol=0) for k, v in one.state_dict().items())
    for run in ('acc', 'ddp'):
        assert all(
            abs(a - b) < 1e-5 * abs(b) + 1e-6 for a, b in zip(_losses(tmp_path / run), _losses(tmp_path / 'one'))
        )
    train(cfg.replace(accum=4), tmp_path / 'cut', stop_at=4, device='cpu', progress=False)  # killed, then resumed
    _, cut = train(cfg.replace(accum=4), tmp_path / 'cut', resume=True, device='cpu', progress=False)
    assert all(torch.equal(v, acc.state_dict()[k]) for k, v in cut.state_dict().items())
    with pytest.raises(ValueError, match='not divisible by the 1 processes x 5 micro-batches'):
        train(cfg.replace(accum=5), tmp_path / 'bad', device='cpu', progress=False)

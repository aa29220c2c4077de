import copy, json, shutil
import pytest, torch
from conftest import run_cli
from farmer import Farmer, FarmerConfig, preset
from farmer.af import AF, perturb_parameters
from farmer.distill import Student, DistillConfig, distill, distill_loss, inverse_step, jacobi_reverse, load_student
from farmer.train import train
from farmer.runs import load_run_model


def test_untrained_student_is_teacher_without_mask(tiny):
    af = perturb_parameters(AF(tiny.replace(af_blocks=3)).double(), 0.05)
    st = Student(af)
    assert (
        all(torch.equal(st.state_dict()[k], v) for k, v in af.state_dict().items())
        and st.state_dict().keys() == af.state_dict().keys()
    )
    assert all(not b.net.causal for b in st.blocks) and all(b.net.causal for b in af.blocks)
    z = torch.randn(2, tiny.tokens, tiny.d, dtype=torch.float64)
    masked = copy.deepcopy(st)
    for b in masked.blocks:
        b.net.causal = True
    with torch.no_grad():
        for t in (1, 2, 3):  # with the mask back: one Jacobi step of the teacher's inverse
            assert torch.allclose(masked.step(t, z), inverse_step(af.blocks[t - 1], z, z), atol=1e-12)


def test_jacobi_decoding_is_exact(tiny):
    cfg = tiny.replace(af_blocks=3, image_size=8)
    af = perturb_parameters(AF(cfg).double(), 0.05)
    x = torch.randn(3, cfg.tokens, cfg.d, dtype=torch.float64)
    z, _ = af(x)
    xj, its = jacobi_reverse(af, z, tol=1e-13)
    assert torch.allclose(xj, x, atol=1e-10) and len(its) == 3 and max(its) <= cfg.tokens + 1


def test_trained_student_inverts_a_tiny_teacher(tiny):
    torch.manual_seed(0)
    cfg = tiny
    teacher = perturb_parameters(AF(cfg), 0.05).requires_grad_(False)
    st = Student(teacher)
    opt = torch.optim.Adam(st.parameters(), 2e-3)
    data = lambda n, g: torch.randn(n, cfg.tokens, cfg.d, generator=g).clamp(-2, 2)
    xt = data(256, torch.Generator().manual_seed(1))
    err = lambda: ((st.reverse(teacher(xt)[0]) - xt) ** 2).mean().item()
    with torch.no_grad():
        e0 = err()
    g = torch.Generator().manual_seed(2)
    for _ in range(300):
        loss, per_block = distill_loss(teacher, st, data(128, g), g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        e1 = err()
    assert per_block.shape == (2,) and e1 < 0.5 * e0 and e1 < 5e-3, (
        e0,
        e1,
    )  # held-out reconstruction MSE: stated tolerance 5e-3


@pytest.fixture(scope='module')
def teacher_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('runs') / 'teacher'
    train(preset('digits-small', steps=20, eval_every=10, batch_size=32, af_width=32, ar_width=32), out, progress=False)
    return out


@pytest.mark.parametrize('prior_frac', [0.0, 0.5])
def test_distill_resume_is_exact_and_refuses_other_teachers(teacher_run, tmp_path, prior_frac):
    a, b = tmp_path / 'a', tmp_path / 'b'
    shutil.copytree(teacher_run, a)
    shutil.copytree(teacher_run, b)
    dc = DistillConfig(steps=12, batch_size=32, eval_every=4, prior_frac=prior_frac, prior_bank=64)
    sa, _ = distill(a, dc, progress=False)
    distill(b, dc, progress=False, stop_at=6)
    assert not (b / 'student.safetensors').exists()
    sb, _ = distill(b, dc, resume=True, progress=False)
    clean = lambda p: [
        {k: v for k, v in json.loads(l).items() if k != 'images_per_s'}
        for l in (p / 'distill-metrics.jsonl').read_text().splitlines()
    ]
    assert clean(a) == clean(b) and sa['final_recon_mse'] == sb['final_recon_mse']
    assert all(
        map(lambda v: 0 <= v < 1, (sa['final_recon_mse'], sa['initial_recon_mse']))
    )  # improvement: test_trained_student_inverts_a_tiny_teacher
    other = Farmer(load_run_model(a).cfg.replace(K_I=3))
    with pytest.raises(ValueError, match='was distilled from a teacher with K_I=8, not 3'):
        load_student(a, other)
    with pytest.raises(ValueError, match='already has a distillation; pass --resume'):
        distill(a, dc, progress=False)


@pytest.mark.slow
def test_distill_and_decoder_cli(teacher_run, tmp_path):
    run = tmp_path / 'r'
    shutil.copytree(teacher_run, run)
    rc, err, out = run_cli('farmer.cli:sample_main', '--run', str(run), '--decoder', 'student')
    assert rc == 2 and len(err) == 1 and 'holds no student.safetensors' in err[0]
    rc, err, out = run_cli(
        'farmer.cli:distill_main', '--run', str(run), '--steps', '4', '--batch-size', '16', '--no-progress'
    )
    assert rc == 0, err
    rc, err, _ = run_cli('farmer.cli:distill_main', '--run', str(run), '--steps', '4', '--no-progress')
    assert rc == 2 and len(err) == 1 and 'pass --resume' in err[0]
    rc, err, _ = run_cli('farmer.cli:distill_main', '--run', str(tmp_path / 'none'))
    assert rc == 2 and len(err) == 1 and 'holds no best.safetensors' in err[0]
    for dec in ('student', 'jacobi'):
        rc, err, out = run_cli(
            'farmer.cli:sample_main', '--run', str(run), '--decoder', dec, '--n', '2', '--out', str(tmp_path / dec)
        )
        assert rc == 0 and (tmp_path / f'{dec}.png').exists(), err
    assert 'iterations per block' in out


def test_teacher_samples_and_prior_share(teacher_run):
    from farmer.distill import teacher_samples

    m = load_run_model(teacher_run)
    x = teacher_samples(m, 10, 0, chunk=4)
    assert x.shape == (10, m.cfg.tokens, m.cfg.d) and torch.isfinite(x).all()
    assert torch.equal(x, teacher_samples(m, 10, 0, chunk=4))  # the same bank on resume
    for kw in (dict(prior_frac=1.5), dict(prior_bank=0)):
        with pytest.raises(ValueError, match='prior_frac must be in'):
            DistillConfig(**kw)

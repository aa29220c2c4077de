import math
import pytest, torch
from conftest import run_cli
from farmer import Farmer, FarmerConfig, preset
from farmer.ar import Unguided
from farmer.af import perturb_parameters
from farmer.gmm import GMM
from farmer.sampling import Guidance, resample_cfg, naive_cfg, tilted_gaussian, generate, halves, drawer, tilted_means


def _model(cfg):
    return perturb_parameters(Farmer(cfg).double(), 0.05).eval()


def _mixture_cdf(g: GMM, pts):
    pi = torch.softmax(g.logits, -1)
    return (pi * torch.distributions.Normal(g.mean[..., 0], g.log_sigma[..., 0].exp()).cdf(pts[:, None])).sum(-1)


G_C = GMM(torch.tensor([0.0, 1.0, -1.0]), torch.tensor([[-2.0], [0.5], [2.5]]), torch.tensor([[-1.0], [-0.7], [-0.3]]))
G_U = GMM(torch.tensor([0.0, 0.0]), torch.tensor([[0.0], [1.0]]), torch.tensor([[0.3], [0.0]]))


@pytest.mark.parametrize('guided', [False, True])
def test_cached_sampling_equals_recomputation(tiny, guided):
    m = _model(tiny)
    y = torch.tensor([0, 2, 1])
    gd = Guidance('resample', w=1.5) if guided else Guidance()
    a = generate(m, y, gd, torch.Generator().manual_seed(3))
    b = generate(m, y, gd, torch.Generator().manual_seed(3), cache=False)
    assert torch.equal(a, b)
    za = m.ar.sample(y, drawer(gd), torch.Generator().manual_seed(1), cache=True)
    zb = m.ar.sample(y, drawer(gd), torch.Generator().manual_seed(1), cache=False)
    assert all(torch.allclose(u, v, atol=1e-5) for u, v in zip(za, zb))


def test_sampled_mixtures_equal_teacher_forcing(tiny):
    m = _model(tiny)
    seen, y = [], torch.tensor([2, 0])

    class Recording:
        guided, red_scale = True, 1.0

        def informative(self, g, gen):
            seen.append(g)
            return halves(g)[0].sample(gen)

        def redundant(self, g, tokens, gen):
            return halves(g)[0].expand(tokens).sample(gen)

    z_I, _ = m.ar.sample(y, Recording(), torch.Generator().manual_seed(0))
    tf_c, tf_u = m.ar(z_I, y)[0], m.ar(z_I, torch.full_like(y, tiny.num_classes))[0]
    for i, g in enumerate(seen):
        c, u = halves(g)
        for a, b in ((c, tf_c), (u, tf_u)):
            for f in ('logits', 'mean', 'log_sigma'):
                assert torch.allclose(getattr(a, f), getattr(b, f)[:, i], atol=1e-5)


@pytest.mark.slow
def test_w0_resampling_samples_the_conditional_gmm():
    "w = 0: exact with candidates from p_c only; with pooled p_u candidates the SIR bias vanishes as pools grow."
    n, pts = 200_000, torch.linspace(-3.5, 4.0, 31)
    gen = torch.Generator().manual_seed(0)
    ref = _mixture_cdf(G_C, pts)

    def ks(s_c, s_u):
        z = resample_cfg(G_C.expand(n), G_U.expand(n), 0.0, gen, s_c=s_c, s_u=s_u)[:, 0, 0]
        return ((z[:, None] <= pts).double().mean(0) - ref).abs().max().item()

    assert ks(5, 0) < 1.95 / math.sqrt(n)  # Kolmogorov-Smirnov, 99.9%
    errs = [ks(s, s) for s in (2, 8, 64)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.006, errs


@pytest.mark.slow
@pytest.mark.parametrize('dim', [1, 2])
def test_k1_resampling_approaches_tilted_gaussian(dim):
    n, w = 50_000, 2.0
    mu_c, sig_c = torch.tensor([1.0, -0.5])[:dim], torch.tensor([0.5, 0.8])[:dim]
    mu_u, sig_u = torch.tensor([0.0, 0.3])[:dim], torch.tensor([1.0, 1.2])[:dim]
    g = lambda mu, sig: GMM(torch.zeros(n, 1), mu.expand(n, 1, dim), sig.log().expand(n, 1, dim))
    m, sd = tilted_gaussian(mu_c, sig_c, mu_u, sig_u, w)
    gen = torch.Generator().manual_seed(0)
    errs = []
    for s in (2, 8, 64):
        z = resample_cfg(g(mu_c, sig_c), g(mu_u, sig_u), w, gen, s_c=s, s_u=s)[:, 0]
        errs.append(((z.mean(0) - m).abs().max() + (z.std(0) - sd).abs().max()).item())
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.01 * dim**1.5, errs  # joint weights converge slower in 2-D
    zn = naive_cfg(g(mu_c, sig_c), g(mu_u, sig_u), w, gen)
    assert (zn.mean(0) - m).abs().max() < 0.01 and (zn.std(0) - sd).abs().max() < 0.01


def test_temperature_knobs_of_resampling():
    n = 100_000
    gen = torch.Generator().manual_seed(0)
    # T_s = 0: uniform choice among candidates -> the pooled proposal mixture, whatever w is
    z = resample_cfg(G_C.expand(n), G_U.expand(n), 3.0, gen, s_c=3, s_u=1, T_s=0.0)[:, 0, 0]
    pts = torch.linspace(-3, 4, 15)
    target = 0.75 * _mixture_cdf(G_C, pts) + 0.25 * _mixture_cdf(G_U, pts)
    assert ((z[:, None] <= pts).double().mean(0) - target).abs().max() < 0.01
    # T_sigma = 0 with K = 1 proposals: every candidate is a mean, so the draw is one of the two means
    one = lambda mu: GMM(torch.zeros(10, 1), torch.full((10, 1, 1), mu), torch.zeros(10, 1, 1))
    z0 = resample_cfg(one(1.0), one(-1.0), 1.0, gen, T_sigma=0.0)
    assert set(z0.flatten().tolist()) <= {1.0, -1.0}


def test_all_modes_and_pools_produce_images(tiny):
    m = _model(tiny)
    for gd in (
        Guidance(),
        Guidance(s=0.9, T=1.3, red_scale=0.5),
        Guidance('naive', w=1.0),
        Guidance('resample', w=2.0, red_pool='per-token', red_s_c=8, red_s_u=8),
        Guidance('resample', w=2.0),
    ):
        imgs = generate(m, torch.tensor([0, 1, 2, 0]), gd, torch.Generator().manual_seed(0))
        assert imgs.shape == (4, 1, 4, 4) and imgs.dtype == torch.uint8
    with pytest.raises(ValueError, match='needs a class-conditional model'):
        generate(_model(tiny.replace(num_classes=0)), 3, Guidance('resample', w=1.0))


def test_guidance_validation():
    for kw, msg in (
        (dict(mode='cfg'), 'unknown guidance mode'),
        (dict(s_c=-1), 's_c must be a count'),
        (dict(T=0.0), 'T must be > 0'),
        (dict(T_sigma_v=0.0), 'T_sigma_v must be > 0'),
        (dict(w=-1.0), 'w must be >= 0'),
        (dict(red_pool='x'), 'red_pool must be'),
    ):
        with pytest.raises(ValueError, match=msg):
            Guidance(**kw)


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    from farmer.train import train

    out = tmp_path_factory.mktemp('runs') / 'r'
    train(preset('digits-small', steps=4, eval_every=2, batch_size=16), out, progress=False)
    return out


def _cli(*args):
    return run_cli('farmer.cli:sample_main', *args)


@pytest.mark.slow
def test_sample_cli(run_dir, tmp_path):
    import numpy as np

    for mode in ('none', 'naive', 'resample'):
        rc, err, out = _cli(
            '--run',
            str(run_dir),
            '--classes',
            '1,4',
            '--n',
            '3',
            '--guidance',
            mode,
            '--w',
            '1.5',
            '--out',
            str(tmp_path / mode),
        )
        assert rc == 0, err
        d = np.load(tmp_path / f'{mode}.npz')
        assert (
            d['images'].shape == (6, 1, 8, 8)
            and d['images'].dtype == np.uint8
            and d['labels'].tolist() == [1, 1, 1, 4, 4, 4]
        )
        assert (tmp_path / f'{mode}.png').stat().st_size > 0
    cases = {
        ('--classes', '0,10'): 'class id 10 out of range',
        ('--n', '-2'): '--n must be a positive count',
        ('--s-c', '-1'): 's_c must be a count',
        ('--T', '-1'): 'T must be > 0',
        ('--guidance', 'cfg'): "unknown guidance mode 'cfg'",
    }
    for args, msg in cases.items():
        rc, err, _ = _cli('--run', str(run_dir), *args)
        assert rc == 2 and len(err) == 1 and msg in err[0], (args, err)
    rc, err, _ = _cli('--run', str(tmp_path / 'empty'))
    assert rc == 2 and len(err) == 1 and 'holds no best.safetensors' in err[0]


def test_guidance_presets_are_table6():
    from farmer.sampling import guidance_preset, GUIDANCE_PRESETS

    g = guidance_preset('farmer-1.1b-p16')
    assert (g.mode, g.w, g.T_sigma, g.s_c, g.s_u, g.T_pi_v, g.T_sigma_v, g.T_s) == (
        'resample',
        2.5,
        0.9,
        5,
        5,
        0.2,
        0.9,
        1.1,
    )
    assert (
        guidance_preset('farmer-1.9b-p8', w=1.0).w == 1.0 and GUIDANCE_PRESETS['farmer-1.9b-p8'].w == 1.5
    )  # overrides copy
    with pytest.raises(ValueError, match="unknown guidance preset 'x'"):
        guidance_preset('x')


def _means_hit(z, means):
    "Whether every row of z `[B, N, d]` equals one of the rows of means `[B, K, d]` (same b)."
    return bool(((z[:, :, None] - means[:, None]).abs().amax(-1).amin(-1) < 1e-9).all())


@pytest.mark.parametrize('mode', ['none', 'naive', 'resample-per-token', 'resample-shared'])
def test_red_scale_zero_draws_the_means(tiny, mode):
    "red_scale = 0 (paper Fig. 7's first column): finite draws at the redundant GMM's means, in every mode."
    m, y = _model(tiny), torch.tensor([0, 2, 1, 1])
    name, _, pool = mode.partition('-')
    gd = Guidance(name, w=0.0 if name == 'none' else 1.5, red_scale=0.0, **(dict(red_pool=pool) if pool else {}))
    z_I, z_R = m.ar.sample(y, drawer(gd), torch.Generator().manual_seed(0))  # as generate calls it
    assert torch.isfinite(z_R).all()
    g_c, g_u = m.ar(z_I, y)[1], m.ar(z_I, torch.full_like(y, tiny.num_classes))[1]
    means = {'none': g_c.mean, 'naive': tilted_means(g_c, g_u, gd.w), 'resample': torch.cat([g_c.mean, g_u.mean], 1)}[
        name
    ]
    assert _means_hit(z_R, means)
    assert not _means_hit(z_R, torch.randn_like(means))  # the check can fail


def test_s_and_T_temper_the_informative_gmms_only(tiny):
    "s = 0 and a tiny T: every z^I is the mean of its GMM's most likely component, while z^R stays random; red_scale = 0: the reverse."
    m, y = _model(tiny), torch.tensor([0, 1, 2])
    z_I, z_R = m.ar.sample(y, drawer(Guidance(s=0.0, T=1e-4)), torch.Generator().manual_seed(0))
    g_I, g_R = m.ar(z_I, y)
    top = g_I.mean.gather(2, g_I.logits.argmax(-1)[..., None, None].expand(-1, -1, 1, tiny.dim_I)).squeeze(
        2
    )  # [B, N, d_I]
    assert torch.allclose(z_I, top, atol=1e-9) and not _means_hit(z_R, g_R.mean)
    z_I, z_R = m.ar.sample(y, drawer(Guidance(red_scale=0.0)), torch.Generator().manual_seed(0))
    g_I, g_R = m.ar(z_I, y)
    assert _means_hit(z_R, g_R.mean) and not _means_hit(z_I.flatten(0, 1)[:, None], g_I.mean.flatten(0, 1))
    for kw, msg in ((dict(s=0.9), 's and T set unguided'), (dict(T=1.3), 's and T set unguided')):
        with pytest.raises(ValueError, match=msg):
            Guidance('resample', w=1.0, **kw)
    with pytest.raises(ValueError, match='naive CFG needs s > 0'):
        Guidance('naive', w=1.0, s=0.0)


def test_drawers_of_each_mode():
    assert isinstance(drawer(Guidance(s=0.9, T=1.3)), Unguided) and drawer(Guidance(s=0.9, T=1.3)) == Unguided(0.9, 1.3)
    assert type(drawer(Guidance('naive', w=1.0))).__name__ == 'NaiveCFG' and drawer(Guidance('naive', w=1.0)).guided
    assert type(drawer(Guidance('resample', w=1.0, red_scale=0.5))).__name__ == 'ResampleCFG'
    assert drawer(Guidance('resample', w=1.0, red_scale=0.5)).red_scale == 0.5


def test_pool_diversity():
    from farmer.sampling import pool_diversity

    gen = torch.Generator().manual_seed(0)
    u = GMM(torch.randn(3, 4, generator=gen), torch.randn(3, 4, 6, generator=gen), torch.zeros(3, 4, 6))
    c = GMM(u.logits, u.mean + 0.5 * torch.randn(3, 4, 6, generator=gen), u.log_sigma)
    flat = pool_diversity(c, u, Guidance('resample', w=2.0, T_s=0.0, red_s_c=5, red_s_u=3, red_pool='shared'), 8, gen)
    assert torch.allclose(flat['ess'], torch.full((3,), 8.0))  # uniform weights: ESS = pool size
    sharp = pool_diversity(c, u, Guidance('resample', w=2.0, T_s=50.0, red_pool='shared'), 8, gen)
    assert (sharp['ess'] < 1.5).all() and (
        sharp['distinct'] <= 2
    ).all()  # near one-hot weights: the tokens copy one candidate
    per = pool_diversity(c, u, Guidance('resample', w=2.0, T_s=50.0, red_pool='per-token'), 8, gen)
    assert (per['distinct'] == 8).all()


@pytest.mark.parametrize('mode', ['none', 'naive', 'resample'])
def test_per_token_redundant_mixtures_in_every_mode(tiny, mode):
    "redundant='gmm-token' (ours): at red_scale 0 each z_i^R is a mean of its own token's mixture (not another token's), in every mode; cache and recomputation agree."
    m, y = _model(tiny.replace(redundant='gmm-token')), torch.tensor([0, 2, 1])
    gd = Guidance(mode, w=0.0 if mode == 'none' else 1.5, red_scale=0.0)
    z_I, z_R = m.ar.sample(y, drawer(gd), torch.Generator().manual_seed(0))
    g_c, g_u = m.ar(z_I, y)[1], m.ar(z_I, torch.full_like(y, tiny.num_classes))[1]  # batch [B, N]
    means = {'none': g_c.mean, 'naive': tilted_means(g_c, g_u, gd.w), 'resample': torch.cat([g_c.mean, g_u.mean], -2)}[
        mode
    ]  # [B, N, K', d]
    hit = lambda ms: all(_means_hit(z_R[:, i : i + 1], ms[:, i]) for i in range(tiny.tokens))
    assert hit(means) and not hit(means.roll(1, 1))  # its own token's means, and the check can fail
    gd1 = Guidance(mode, w=0.0 if mode == 'none' else 1.5)
    a = generate(m, y, gd1, torch.Generator().manual_seed(3))
    assert torch.equal(a, generate(m, y, gd1, torch.Generator().manual_seed(3), cache=False))
    with pytest.raises(ValueError, match="red_pool='shared' needs the shared redundant GMM"):
        generate(m, y, Guidance('resample', w=1.5, red_pool='shared'))

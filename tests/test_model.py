import json, math, pytest, torch
from pathlib import Path
import torch.nn as nn
from farmer import Farmer, FarmerConfig, param_counts, preset
from farmer.ar import Unguided
from farmer.sampling import generate
from farmer.af import perturb_parameters
from farmer.data import dequantize_uniform, to_model_space, load_dataset


def _model(cfg, std=0.02):
    return perturb_parameters(Farmer(cfg).double(), std)


def _x(cfg, B=3):
    return torch.randn(B, cfg.channels, cfg.image_size, cfg.image_size, dtype=torch.float64).clamp(-1, 1)


def test_public_api_shapes(tiny):
    m = Farmer(preset('digits', K_I=8))
    x, y = to_model_space(load_dataset('digits')[0][:4]), torch.tensor([0, 1, 2, 3])
    out = m(x, y)
    assert out['loss'].shape == () and all(out[k].shape == (4,) for k in ('bpd', 'nll', 'nll_I', 'nll_R', 'logdet'))
    z, logdet = m.encode(x)
    assert z.shape == (4, 16, 4) and torch.allclose(m.decode(z), x, atol=1e-5)
    imgs = generate(m, y, generator=torch.Generator().manual_seed(0))
    assert imgs.shape == (4, 1, 8, 8) and imgs.dtype == torch.uint8
    assert torch.equal(imgs, generate(m, y, generator=torch.Generator().manual_seed(0)))


def test_ar_causal_mask_and_redundant_dependence(tiny):
    m = _model(tiny)
    z_I = torch.randn(1, tiny.tokens, tiny.dim_I, dtype=torch.float64, requires_grad=True)
    g_I, g_R = m.ar(z_I, torch.tensor([1]))
    for i in range(tiny.tokens):
        out = g_I.logits[0, i].sum() + g_I.mean[0, i].sum() + g_I.log_sigma[0, i].sum()
        (gi,) = torch.autograd.grad(out, z_I, retain_graph=True)
        assert gi[0, i:].abs().max() == 0 and (i == 0 or gi[0, :i].abs().sum(-1).min() > 0)
    (gr,) = torch.autograd.grad(g_R.mean.sum() + g_R.log_sigma.sum() + g_R.logits.sum(), z_I)
    assert (gr[0].abs().sum(-1) > 0).all()  # G_{N+1} sees every z^I


def test_redundant_gmm_ignores_z_R(tiny):
    "An image whose latent differs only in z^R: nll_I and the shared GMM are unchanged, nll_R moves only through the density at the new z^R."
    m = _model(tiny)
    x, y = _x(tiny, 2), torch.tensor([0, 2])
    z_I, z_R = m.split(m.to_ar_order(m.encode(x)[0]))
    z_R2 = z_R + 0.5 * torch.randn_like(z_R)
    x2 = m.decode(m.from_ar(z_I, z_R2))
    back_I, back_R = m.split(m.to_ar_order(m.encode(x2)[0]))
    assert torch.allclose(back_I, z_I, atol=1e-9) and torch.allclose(
        back_R, z_R2, atol=1e-9
    )  # x2 carries exactly (z_I, z_R2)
    out, out2 = m(x, y), m(x2, y)
    assert torch.allclose(out2['nll_I'], out['nll_I'], atol=1e-8)
    _, g_R = m.ar(z_I, y)  # the shared GMM predicted from x's z^I alone
    want = -sum(g_R.log_prob(z_R2[:, i]) for i in range(tiny.tokens))
    assert torch.allclose(out2['nll_R'], want, atol=1e-8) and (out2['nll_R'] - out['nll_R']).abs().min() > 1e-3


def test_split_merge_and_nll_bookkeeping(tiny):
    m = _model(tiny)
    x, y = _x(tiny), torch.tensor([0, 1, 2])
    z, logdet = m.encode(x)
    z_I, z_R = m.split(m.to_ar_order(z))
    assert torch.equal(m.from_ar(z_I, z_R), z)  # split/merge and the final permute are bijections
    assert torch.allclose(m.decode(m.from_ar(z_I, z_R)), x, atol=1e-10)  # stored z_R, no resampling
    out = m(x, y)
    g_I, g_R = m.ar(z_I, y)
    nll_I = -g_I.log_prob(z_I).sum(1)
    nll_R = -sum(g_R.log_prob(z_R[:, i]) for i in range(tiny.tokens))
    assert torch.allclose(out['nll_I'], nll_I, atol=1e-12) and torch.allclose(out['nll_R'], nll_R, atol=1e-12)
    assert torch.equal(out['nll'], out['nll_I'] + out['nll_R'] - out['logdet'])
    assert torch.allclose(out['loss'] * tiny.D, out['nll'].mean(), atol=1e-12)
    assert torch.allclose(out['bpd'], out['nll'] / (tiny.D * math.log(2)) + 7, atol=1e-12)


def test_k1_equals_af_with_final_gaussian_block(tiny):
    "Paper A.1: with K = 1 and no split, the AR is one more affine AF block with an N(0, I) prior."
    from farmer.analysis import k1_flow_nll

    m = _model(tiny.replace(K_I=1, d_I=None))
    x, y = _x(m.cfg), torch.tensor([2, 0, 1])
    assert torch.allclose(m(x, y)['nll'], k1_flow_nll(m, x, y), atol=1e-9)
    with pytest.raises(ValueError, match='K_I=1 and d_I=None'):
        k1_flow_nll(_model(tiny), x, y)


@pytest.mark.slow
def test_bpd_sanity_identity_flow_standard_normal():
    cfg = FarmerConfig(d_I=None, K_I=1)
    m = Farmer(cfg)
    nn.init.zeros_(m.ar.head_I.proj.weight)  # prior exactly N(0, I), AF exactly identity
    k = torch.randint(0, 256, (8192, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    with torch.no_grad():
        bpd = m(dequantize_uniform(k, generator=torch.Generator().manual_seed(1)))['bpd'].mean()
    expected = (1 / 6 + 0.5 * math.log(2 * math.pi)) / math.log(2) + 7  # 8.566
    assert abs(bpd.item() - expected) < 0.005


def test_bpd_invariant_to_data_convention(tiny):
    m1 = _model(tiny)
    m2 = Farmer(tiny.replace(value_range=(0.0, 1.0))).double()
    m2.load_state_dict(m1.state_dict())
    k = torch.randint(0, 256, (4, 1, 4, 4), dtype=torch.uint8)
    u = torch.rand(k.shape, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    o1, o2 = m1(to_model_space(k, (-1.0, 1.0), u).double(), y), m2(to_model_space(k, (0.0, 1.0), u).double(), y)
    assert torch.allclose(o1['nll'] - o2['nll'], torch.full((4,), tiny.D * math.log(2), dtype=torch.float64), atol=1e-9)
    assert torch.allclose(o1['bpd'], o2['bpd'], atol=1e-9)


@pytest.mark.parametrize('blocks', [1, 2, 3, 4])
@pytest.mark.parametrize('final_permute', [True, False])
def test_final_permute_direction(tiny, blocks, final_permute):
    "The AR's dependency direction (in natural token order) is opposite to the last AF block's iff final_permute."
    m = _model(tiny.replace(af_blocks=blocks, final_permute=final_permute))
    x = torch.randn(1, tiny.tokens, tiny.d, dtype=torch.float64, requires_grad=True)
    z0, _ = m.af.blocks[-1](x)  # last block: does token 1 depend on token 0?
    af_forward = torch.autograd.grad(z0[0, 1].sum(), x)[0][0, 0].abs().sum() > 0
    z = torch.randn(1, tiny.tokens, tiny.d, dtype=torch.float64, requires_grad=True)
    g_I, _ = m.ar(m.split(m.to_ar_order(z))[0], torch.tensor([0]))
    g_nat = g_I.mean.flip(1) if m.ar_flip else g_I.mean  # mixtures back in natural token order
    ar_forward = torch.autograd.grad(g_nat[0, 1].sum(), z)[0][0, 0].abs().sum() > 0
    assert (af_forward != ar_forward) == final_permute


def test_ablation_flags_share_the_model(tiny):
    for kw in (
        dict(d_I=None),
        dict(redundant='normal'),
        dict(K_I=1, d_I=None),
        dict(cond_repeat=1),
        dict(final_permute=False),
    ):
        m = _model(tiny.replace(**kw))
        out = m(_x(tiny), torch.tensor([0, 1, 2]))
        assert torch.isfinite(out['loss'])
    m = _model(tiny.replace(redundant='normal'))
    x = _x(tiny)
    z_I, z_R = m.split(m.to_ar_order(m.encode(x)[0]))
    out = m(x, torch.tensor([0, 1, 2]))
    assert torch.allclose(out['nll_R'], (0.5 * z_R**2 + 0.5 * math.log(2 * math.pi)).sum((1, 2)))
    from farmer.ar import FactorOut, PerTokenGMM, SharedGMM

    assert isinstance(m.ar.head_R, FactorOut) and isinstance(_model(tiny.replace(d_I=None)).ar.head_R, FactorOut)
    assert (
        type(_model(tiny).ar.head_R) is SharedGMM
        and type(_model(tiny.replace(redundant='gmm-token')).ar.head_R) is PerTokenGMM
    )


def test_one_batch_overfit():
    cfg = preset('digits')
    torch.manual_seed(0)
    m = Farmer(cfg)
    xb, yb = load_dataset('digits')
    x, y = to_model_space(xb[:32]), yb[:32]
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    losses = []
    for _ in range(30):
        out = m(x + 0.05 * torch.randn_like(x), y)
        opt.zero_grad()
        out['loss'].backward()
        assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
        opt.step()
        losses.append(out['loss'].item())
    assert losses[-1] < losses[0] - 0.3


def test_ar_cached_sampling_matches_teacher_forcing(tiny):
    "At s=0, red_scale=0 and K=1 each sampled token is the mean its mixture predicted; re-scoring in one pass agrees."
    m = _model(tiny.replace(K_I=1, K_R=1), std=0.05)
    y = torch.tensor([0, 2])
    z_I, z_R = m.ar.sample(y, Unguided(s=0.0, red_scale=0.0), torch.Generator().manual_seed(0))
    g_I, g_R = m.ar(z_I, y)
    assert torch.allclose(g_I.mean[:, :, 0], z_I, atol=1e-10) and torch.allclose(
        g_R.mean[:, 0, None].expand_as(z_R), z_R, atol=1e-10
    )


def test_bad_input(tiny):
    with pytest.raises(ValueError, match=r'images must be \[B, 1, 4, 4\]'):
        Farmer(tiny)(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match='images must be float'):
        Farmer(tiny)(torch.zeros(2, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r'labels must be in 0..2'):
        Farmer(tiny)(torch.zeros(2, 1, 4, 4), torch.tensor([0, 7]))
    with pytest.raises(ValueError, match='labels must have shape'):
        Farmer(tiny)(torch.zeros(2, 1, 4, 4), torch.tensor([0]))
    with pytest.raises(ValueError, match='not divisible by patch 3'):
        FarmerConfig(image_size=8, patch=3)
    with pytest.raises(ValueError, match=r'd_I must be None or in 1..d=4'):
        FarmerConfig(d_I=9)
    with pytest.raises(ValueError, match="unknown preset 'cifar'"):
        preset('cifar')
    with pytest.raises(ValueError, match="unknown config key 'k_i'"):
        preset('digits', k_i=3)
    with pytest.raises(ValueError, match="unknown config key"):
        FarmerConfig.from_dict({'nope': 1})


def test_config_json_written_before_the_recipe_had_a_class_loads():
    """A run's `config.json` written at commit 2237140 (one flat dict: model and recipe fields in one class) loads into
    `FarmerConfig` + `Recipe`, the fields land where they belong, and it is written back as the same dict (plus the fields added since, at their defaults)."""
    old = json.loads((Path(__file__).parent / 'data' / 'config-2237140.json').read_text())
    cfg = FarmerConfig.from_dict(old)
    assert cfg == preset('fashion-mnist-samples', d_I=8, steps=30000)
    assert (cfg.d_I, cfg.dequant, cfg.recipe.steps, cfg.recipe.lr, cfg.recipe.eval_every) == (
        8,
        'gaussian',
        30000,
        2e-3,
        1000,
    )
    assert json.loads(json.dumps(cfg.to_dict())) == old | {
        'head_lr': 1.0,
        'head_init': 0.0,
        'accum': 1,
        'eval_batch': 500,
        'ema': 0.0,
        'checkpointing': False,
    }  # and fields added since, at their defaults
    assert cfg.replace(lr=1e-3).recipe.lr == 1e-3 and cfg.replace(lr=1e-3).d_I == 8


def test_param_counts_match_paper_table1():
    c11, c19 = param_counts(preset('imagenet256-1.1b')), param_counts(preset('imagenet256-1.9b'))
    assert abs(c11['total'] / 1.1e9 - 1) < 0.05 and abs(c19['total'] / 1.9e9 - 1) < 0.05
    assert abs(c11['ar'] / 295e6 - 1) < 0.05 and abs(c11['af'] / 828e6 - 1) < 0.05
    assert abs(param_counts(preset('imagenet64-556m'))['total'] / 556e6 - 1) < 0.05


@pytest.mark.parametrize('basis', ['dct', 'haar', 'random'])
def test_token_basis_is_an_exact_rotation(tiny, basis):
    "An orthonormal token basis: exact round trip, log-det of encode still the brute-force one, and the BPD of a rotation-invariant model unchanged."
    from farmer.af import logdet_bruteforce

    m = _model(tiny.replace(basis=basis), 0.05).eval()
    x = _x(m.cfg)
    with torch.no_grad():
        z, ld = m.encode(x)
    assert torch.allclose(m.decode(z), x, atol=1e-10)
    assert torch.allclose(ld, logdet_bruteforce(lambda v: m.encode(v)[0], x), atol=1e-8)
    assert not torch.allclose(m.to_tokens(x), _model(tiny).to_tokens(x))  # the basis is applied
    cfg = FarmerConfig(d_I=None, K_I=1)
    pixel, rotated = Farmer(cfg).double(), Farmer(cfg.replace(basis=basis)).double()
    for net in (pixel, rotated):
        nn.init.zeros_(net.ar.head_I.proj.weight)  # AF identity, prior N(0, I): rotation invariant
    k = torch.randint(0, 256, (64, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    xx = dequantize_uniform(k, generator=torch.Generator().manual_seed(1)).double()
    with torch.no_grad():
        assert torch.allclose(pixel(xx)['bpd'], rotated(xx)['bpd'], atol=1e-10)


def test_token_basis_bad_input():
    with pytest.raises(ValueError, match="basis must be 'pixel', 'dct', 'haar' or 'random'"):
        FarmerConfig(basis='fourier')
    with pytest.raises(ValueError, match="mix must be 'none', 'lu' or 'lu-latent'"):
        FarmerConfig(mix='glow')
    with pytest.raises(ValueError, match="needs a power-of-two patch, got patch 7"):
        preset('fashion-mnist', basis='haar')


@pytest.mark.parametrize('mix', ['lu', 'lu-latent'])
def test_learned_channel_mixing_is_an_exact_flow_part(tiny, mix):
    "Either mixing: the log-det of encode is still the brute-force one (fp64), decode inverts it, it learns, and K = 1 is still an AF."
    from farmer.af import logdet_bruteforce
    from farmer.analysis import k1_flow_nll

    m = _model(tiny.replace(mix=mix), 0.05).eval()
    mixing = m.mix_in if mix == 'lu' else m.mix_out
    assert not torch.allclose(mixing.weight(), torch.eye(tiny.d, dtype=torch.float64))  # perturbed: a real mixing
    x = _x(m.cfg)
    with torch.no_grad():
        z, ld = m.encode(x)
        t, _ = m.af_input(x)
        z_af, _ = m.af(t)
    assert torch.allclose(m.decode(z), x, atol=1e-10)
    assert torch.allclose(m.from_af_input(t), x, atol=1e-10) and torch.allclose(m.af_output(z), z_af, atol=1e-10)
    assert (mix == 'lu') == torch.allclose(z, z_af)  # the latent placement mixes what the AR sees
    assert torch.allclose(ld, logdet_bruteforce(lambda v: m.encode(v)[0], x), atol=1e-8)
    k1 = _model(tiny.replace(mix=mix, K_I=1, d_I=None))
    assert torch.allclose(k1(x, torch.tensor([2, 0, 1]))['nll'], k1_flow_nll(k1, x, torch.tensor([2, 0, 1])), atol=1e-9)
    m.train()
    m(x, torch.tensor([0, 1, 2]))['loss'].backward()
    assert mixing.L.grad.abs().sum() > 0 and mixing.log_s.grad.abs().sum() > 0
    fresh = Farmer(tiny.replace(mix=mix))
    assert torch.equal((fresh.mix_in if mix == 'lu' else fresh.mix_out).weight(), torch.eye(tiny.d))  # identity at init
    legacy = {k.replace('mix_in.', 'mix.').replace('mix_out.', 'mix.'): v for k, v in m.state_dict().items()}
    assert any(k.startswith('mix.') for k in legacy)  # weights saved when the one mixing was called `mix`
    fresh.double().load_state_dict(legacy)
    assert torch.equal(fresh.state_dict()[next(k for k in m.state_dict() if '.L' in k and 'mix' in k)], mixing.L)


def test_per_token_redundant_gmm(tiny):
    "redundant='gmm-token' (ours): one mixture per redundant token, each seeing every z^I; nll_R is their torch.distributions log-density; sampling draws z_i^R from G^R_i."
    cfg = tiny.replace(redundant='gmm-token')
    m, x, y = _model(cfg), _x(cfg), torch.tensor([0, 1, 2])
    z_I, z_R = m.split(m.to_ar_order(m.encode(x)[0]))
    _, g_R = m.ar(z_I, y)
    assert g_R.logits.shape == (3, cfg.tokens, cfg.K_R) and (g_R.mean[:, 0] - g_R.mean[:, 1]).abs().max() > 1e-6
    D = torch.distributions
    ref = D.MixtureSameFamily(
        D.Categorical(logits=g_R.logits), D.Independent(D.Normal(g_R.mean, g_R.log_sigma.exp()), 1)
    )
    out = m(x, y)
    assert torch.allclose(out['nll_R'], -ref.log_prob(z_R).sum(1), atol=1e-10)
    assert torch.allclose(m.decode(m.encode(x)[0]), x, atol=1e-10)
    zi = z_I.detach().requires_grad_()
    g = m.ar(zi, y)[1]
    for i in range(cfg.tokens):  # G^R_i sees every z_j^I
        (gr,) = torch.autograd.grad(g.mean[:, i].sum(), zi, retain_graph=True)
        assert (gr.abs().sum(-1) > 0).all()
    m1 = _model(cfg.replace(K_I=1, K_R=1), std=0.05)
    zi, zr = m1.ar.sample(y, Unguided(s=0.0, red_scale=0.0), torch.Generator().manual_seed(0))
    assert torch.allclose(m1.ar(zi, y)[1].mean[:, :, 0], zr, atol=1e-10)


def test_head_init_starts_the_mixture_components_apart():
    "Recipe.head_init reaches both mixture heads: their mean biases start N(0, head_init²) per component and dimension."
    for init in (0.0, 1.0):
        torch.manual_seed(0)
        m = Farmer(preset('digits', d_I=2, head_init=init, K_I=64, K_R=64))
        for head in (m.ar.head_I, m.ar.head_R[-1]):
            K, d = head.K, head.d
            means = head.proj.bias[K : K + K * d]
            assert (means.std().item() > 0.8) if init else (means.abs().max().item() == 0.0), (init, head)
            assert (
                head.proj.bias[:K].abs().max() == 0 and head.proj.bias[K + K * d :].abs().max() == 0
            )  # π, σ as before

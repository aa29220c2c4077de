import pytest, torch
from farmer.af import AF, AFBlock, perturb_parameters, jacobian_bruteforce, logdet_bruteforce


def _af(cfg, dtype=torch.float64, std=0.02):
    return perturb_parameters(AF(cfg).to(dtype), std)


def test_identity_and_zero_logdet_at_init(tiny):
    af = AF(tiny.replace(af_blocks=3)).double()
    x = torch.randn(5, tiny.tokens, tiny.d, dtype=torch.float64)
    with torch.no_grad():
        z, ld = af(x)
    assert torch.equal(z, x) and torch.equal(ld, torch.zeros(5, dtype=torch.float64))


@pytest.mark.parametrize('dtype,atol', [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_round_trip_after_perturbation(tiny, dtype, atol):
    cfg = tiny.replace(af_blocks=4, image_size=8)  # N = 16 tokens
    af = _af(cfg, dtype)
    x = torch.randn(3, cfg.tokens, cfg.d, dtype=dtype)
    with torch.no_grad():
        z, _ = af(x)
        assert (z - x).abs().max() > 1e-2  # the perturbed flow is not the identity
        x_cached, x_ref = af.reverse(z), af.reverse(z, cache=False)
    assert (x_cached - x).abs().max() < atol and (x_ref - x).abs().max() < atol
    assert (x_cached - x_ref).abs().max() < atol


def test_logdet_equals_slogdet_of_jacobian(tiny):
    cfg = tiny.replace(af_blocks=3)
    af = _af(cfg)
    x = torch.randn(3, cfg.tokens, cfg.d, dtype=torch.float64)
    J = jacobian_bruteforce(lambda v: af(v)[0], x)
    cond = torch.linalg.cond(J)
    print(f'cond(J) = {cond.tolist()}')
    assert (cond < 1e3).all()  # a well-conditioned test case
    assert torch.allclose(af(x)[1], torch.linalg.slogdet(J)[1], atol=1e-10, rtol=0)
    assert torch.allclose(af(x)[1], logdet_bruteforce(lambda v: af(v)[0], x), atol=1e-10, rtol=0)


@pytest.mark.parametrize('flip', [False, True])
def test_causality_and_shift(tiny, flip):
    "Perturbing token j (processing order) changes no output before j, and not (mu, s) of token j itself."
    blk = perturb_parameters(AFBlock(tiny.d, tiny.tokens, 16, 2, 2, flip=flip).double(), 0.05)
    N = tiny.tokens
    x = torch.randn(2, N, tiny.d, dtype=torch.float64)
    order = list(range(N))[::-1] if flip else list(range(N))
    for pj, j in enumerate(order):
        x2 = x.clone()
        x2[:, j] += torch.randn(tiny.d, dtype=torch.float64)
        z, z2 = blk(x)[0], blk(x2)[0]
        for pi, i in enumerate(order):
            changed = (z2[:, i] - z[:, i]).abs().max() > 0
            assert changed == (pi >= pj), (i, j)  # before j: unchanged; j and after: changed
        mu, s = blk.params(blk.permute(x))
        mu2, s2 = blk.params(blk.permute(x2))
        assert torch.equal(mu[:, : pj + 1], mu2[:, : pj + 1]) and torch.equal(s[:, : pj + 1], s2[:, : pj + 1])


def test_first_token_passes_through(tiny):
    af = _af(tiny.replace(af_blocks=1))
    x = torch.randn(2, tiny.tokens, tiny.d, dtype=torch.float64)
    assert torch.equal(af(x)[0][:, 0], x[:, 0])


def test_permutation_is_pure(tiny):
    for flip in (False, True):
        blk = AFBlock(tiny.d, tiny.tokens, 16, 1, 2, flip=flip)
        x = torch.randn(1, tiny.tokens, tiny.d)
        p = blk.permute(x)
        p += 1
        assert not torch.equal(p, blk.permute(x))  # writing into the output never touches x
        assert torch.equal(blk.permute(blk.permute(x)), x)


def test_alternating_directions(tiny):
    af = AF(tiny.replace(af_blocks=5))
    assert [b.flip for b in af.blocks] == [False, True, False, True, False] and af.last_flip is False


def test_logscale_soft_clip_bounds_jacobian(tiny):
    af = _af(tiny.replace(af_blocks=1, soft_clip=0.5), std=3.0)  # huge perturbation, bounded log-scales
    x = torch.randn(4, tiny.tokens, tiny.d, dtype=torch.float64)
    _, s = af.blocks[0].params(x)
    assert 0.45 < s.abs().max() <= 0.5  # saturates at the bound, never beyond

import torch
from farmer.gmm import GMM, GMMHead, soft_clamp_log_sigma

D = torch.distributions


def _rand_gmm(batch=(4, 3), K=5, d=3, dtype=torch.float64):
    return GMM(
        torch.randn(*batch, K, dtype=dtype),
        torch.randn(*batch, K, d, dtype=dtype),
        0.5 * torch.randn(*batch, K, d, dtype=dtype),
    )


def test_log_prob_matches_mixture_same_family():
    g = _rand_gmm()
    ref = D.MixtureSameFamily(D.Categorical(logits=g.logits), D.Independent(D.Normal(g.mean, g.log_sigma.exp()), 1))
    z = 2 * torch.randn(4, 3, 3, dtype=torch.float64)
    assert torch.allclose(g.log_prob(z), ref.log_prob(z), atol=1e-12, rtol=0)


def test_k1_is_normal():
    g = _rand_gmm(K=1)
    z = torch.randn(4, 3, 3, dtype=torch.float64)
    ref = D.Normal(g.mean[..., 0, :], g.log_sigma[..., 0, :].exp()).log_prob(z).sum(-1)
    assert torch.allclose(g.log_prob(z), ref, atol=1e-12, rtol=0)


def test_log_prob_fp32_under_half_inputs():
    g = _rand_gmm(dtype=torch.bfloat16)
    assert g.log_prob(torch.randn(4, 3, 3, dtype=torch.bfloat16)).dtype == torch.float32


def test_sample_moments():
    g = GMM(
        torch.tensor([0.5, -0.5]), torch.tensor([[1.0, -2.0], [-1.0, 3.0]]), torch.tensor([[-1.0, 0.0], [0.5, -0.5]])
    )
    s = g.expand(100_000).sample(torch.Generator().manual_seed(0))
    pi = torch.softmax(g.logits, 0)
    mean = (pi[:, None] * g.mean).sum(0)
    var = (pi[:, None] * (g.log_sigma.exp() ** 2 + g.mean**2)).sum(0) - mean**2
    assert torch.allclose(s.mean(0), mean, atol=0.03) and torch.allclose(s.var(0), var, rtol=0.03)


def test_temperature_semantics():
    g = _rand_gmm(batch=(2,), K=4, d=2)
    gt = g.tempered(logit_scale=0.5, sigma_scale=0.7)  # A.2: T_pi multiplies logits; T_sigma multiplies sigma
    assert torch.allclose(gt.logits, 0.5 * g.logits) and torch.allclose(gt.log_sigma.exp(), 0.7 * g.log_sigma.exp())
    flat = g.tempered(logit_scale=1 / 3.0)  # SUPP's T = 3 divides logits: flatter weights
    ent = lambda l: -(torch.softmax(l, -1) * torch.log_softmax(l, -1)).sum(-1)
    assert (ent(flat.logits) > ent(g.logits)).all()
    means = g.tempered(sigma_scale=0.0).expand(200).sample(torch.Generator().manual_seed(1))  # [2, 200, 2]
    for b in range(2):
        assert all(any(torch.equal(m, c) for c in g.mean[b]) for m in means[b])


def test_head_init_and_scale_map():
    head = GMMHead(32, K=6, d=4)
    g = head(torch.randn(3, 5, 32))
    assert g.logits.shape == (3, 5, 6) and g.mean.shape == (3, 5, 6, 4)
    assert torch.equal(g.log_sigma, torch.zeros_like(g.log_sigma)) and torch.equal(g.logits, torch.zeros_like(g.logits))
    assert g.mean.std() > 0  # components not exactly symmetric
    r = torch.linspace(-50, 50, 10001, dtype=torch.float64)
    c = soft_clamp_log_sigma(r)
    assert (c > -7).all() and (c < 5).all() and (torch.diff(c) > 0).all()
    assert soft_clamp_log_sigma(torch.tensor(0.0)) == 0
    assert torch.allclose(
        soft_clamp_log_sigma(torch.tensor([-1e-4, 1e-4], dtype=torch.float64)),
        torch.tensor([-1e-4, 1e-4], dtype=torch.float64),
    )

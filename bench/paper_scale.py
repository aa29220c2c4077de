"""Memory and time of the paper-scale path, measured on a CPU: the redundant mixture's log-density as batched matrix
products (`GMM.log_prob_rows`) against the `[B, N, K, d]` form it replaced, and activation checkpointing.

Memory is the peak resident set (VmHWM) of a fresh process doing one thing at the `imagenet256-1.1b` preset's geometry
(N = 256 tokens, d = 768, d_R = 640, K_R = 200, its blocks and layers) with every Transformer shrunk to width 64, so that
the geometry counts, not the weights: scoring 16 images (no gradients) and one training step of 4 images, each with
either form, and the step with activation checkpointing. Time is the
`fashion-mnist` preset's training step (d_R = 41, K_R = 16) with each form, in interleaved rounds in one process, and the
informative heads' log-density (one mixture per token) in both forms, for whether the matrix form pays there too.

    python bench/paper_scale.py            # writes figures/paper-scale.json
"""

import json, statistics, subprocess, sys, time
from pathlib import Path
import torch
from farmer.config import preset
from farmer.gmm import GMM
from farmer.model import Farmer
from farmer.ar import SharedGMM

OUT = Path(__file__).resolve().parents[1] / 'figures' / 'paper-scale.json'
SHRUNK = dict(af_width=64, af_heads=4, ar_width=64, ar_heads=4)


def d_wide(self, g: GMM, z_R: torch.Tensor) -> torch.Tensor:
    "The redundant NLL as it was: the shared mixture expanded over the tokens, `[B, N, K, d]` differences."
    return -g.expand(z_R.shape[1]).log_prob(z_R).sum(1)


def child(case: str) -> None:
    "One measurement in this (fresh) process; prints its peak resident set in MiB."
    form, what = case.split('-', 1)  # ('rows' | 'wide', 'score' | 'train' | 'train_ckpt')
    if form == 'wide':
        SharedGMM.nll = d_wide
    cfg = preset('imagenet256-1.1b', **SHRUNK, checkpointing=what == 'train_ckpt')
    torch.manual_seed(0)
    m = Farmer(cfg)
    B = 16 if what == 'score' else 4
    x, y = torch.rand(B, 3, 256, 256) * 2 - 1, torch.arange(B)
    if what == 'score':
        with torch.no_grad():
            m.eval()(x, y)
    else:
        m(x, y)['loss'].backward()
    print([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0] / 1024)


def peak(case: str) -> float:
    r = subprocess.run([sys.executable, __file__, '--child', case], capture_output=True, text=True, check=True)
    return float(r.stdout.split()[-1])


def step_times(rounds: int = 7, steps: int = 5) -> dict:
    "Seconds per training step of the `fashion-mnist` preset (batch 64) with each redundant form, interleaved."
    cfg = preset('fashion-mnist')
    torch.manual_seed(0)
    m, rows = Farmer(cfg), SharedGMM.nll
    opt = torch.optim.AdamW(m.parameters(), 1e-4)
    x, y = torch.rand(64, 1, 28, 28) * 2 - 1, torch.arange(64) % 10
    t = {'rows': [], 'wide': []}
    for _ in range(rounds):
        for form in t:
            SharedGMM.nll = rows if form == 'rows' else d_wide
            t0 = time.perf_counter()
            for _ in range(steps):
                m(x, y)['loss'].backward()
                opt.step()
                opt.zero_grad()
            t[form].append((time.perf_counter() - t0) / steps)
    SharedGMM.nll = rows
    return {k: statistics.median(v) for k, v in t.items()}


def per_token_rows(g: GMM, z: torch.Tensor) -> torch.Tensor:
    "The matrix form for one mixture per token: batch `[B, N]`, points `[B, N, d]`, as `[B, N, 1, d] x [B, N, d, K]`."
    return GMM(g.logits, g.mean, g.log_sigma).log_prob_rows(z[..., None, :])[..., 0]


def informative_times(rounds: int = 7, reps: int = 20) -> dict:
    "Forward and backward seconds of the informative heads' log-density at the `fashion-mnist` chapter model's shapes (B 64, N 16, K 32, d 49)."
    g = torch.Generator().manual_seed(0)
    t_ = lambda *s: torch.randn(*s, generator=g).requires_grad_()
    gm, z = GMM(t_(64, 16, 32), t_(64, 16, 32, 49), t_(64, 16, 32, 49)), t_(64, 16, 49)
    assert torch.allclose(per_token_rows(gm, z), gm.log_prob(z), atol=1e-3)
    t = {'rows': [], 'wide': []}
    for _ in range(rounds):
        for form, f in (('rows', per_token_rows), ('wide', GMM.log_prob)):
            t0 = time.perf_counter()
            for _ in range(reps):
                f(gm, z).sum().backward()
            t[form].append((time.perf_counter() - t0) / reps)
    return {k: statistics.median(v) for k, v in t.items()}


def main():
    mem = {c: peak(c) for c in ('wide-score', 'rows-score', 'wide-train', 'rows-train', 'rows-train_ckpt')}
    steps, inf = step_times(), informative_times()
    rec = dict(
        geometry='imagenet256-1.1b, Transformers at width 64',
        peak_mib=mem,
        fashion_mnist_step_s=steps,
        fashion_mnist_step_ratio=steps['rows'] / steps['wide'],
        informative_logprob_s=inf,
        informative_ratio=inf['rows'] / inf['wide'],
        torch=torch.__version__,
        threads=torch.get_num_threads(),
    )
    OUT.write_text(json.dumps(rec, indent=1) + '\n')
    print(json.dumps(rec, indent=1))


if __name__ == '__main__':
    child(sys.argv[2]) if sys.argv[1:2] == ['--child'] else main()

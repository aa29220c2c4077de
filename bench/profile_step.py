"""Where the time of one training step goes, for this checkout and an older commit, side by side on one machine.

Each part of a step is timed on its own, forward and backward, with the shapes of the preset's batch, in a fresh
interpreter that imports the code of one version: the data and the noise of a batch, the AF (its attention separately,
from the profiler), the AR Transformer with its heads, the GMM log-densities, the optimiser (clipping and the update),
and the whole step as the training loop runs it; what the parts leave of the whole is Python and glue. Each process
times its parts in turn, repeatedly; the processes of the three variants interleave over `--rounds`, and the table
gives the medians. The compiled step of the new code has no parts (the compiler fuses across them): it is timed
whole, and the profiler splits its time into matrix multiplies, attention kernels and the compiler's fused kernels.
The GEMM rate at the model's shapes, in fp32 and in bf16, says what changes that keep the model could gain at most.

    python bench/profile_step.py [--against c9e1402] [--presets fashion-mnist,digits] [--rounds 3]

Writes `figures/profile-step.json`, which the throughput chapter tabulates.
"""

import argparse, json, os, statistics, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRIVER = r'''
import json, math, statistics, sys, time
import torch
name, rounds, compiled = sys.argv[1], int(sys.argv[2]), sys.argv[3] == '1'
from farmer.model import Farmer
try:                                              # this checkout
    from farmer.config import preset
    from farmer.loop import make_optimizer, global_indices, rank_rows
    from farmer.data import open_dataset
    from farmer.train import make_batch
    ds = open_dataset(name if name != 'fashion-mnist' else 'fashion-mnist', 'train', val_images=preset(name).val_images)
    cfg = preset(name)
    batch = lambda step: make_batch(step, *ds.batch(global_indices(step, len(ds), cfg.recipe)), rank_rows(cfg.recipe), cfg)
except ImportError:                               # the older code: FarmerConfig.preset, make_batch over an image tensor
    from farmer.config import FarmerConfig
    from farmer.train import make_optimizer, make_batch
    from farmer.data import load_dataset
    cfg = FarmerConfig.preset(name)
    xs, ys = load_dataset(name, 'train')
    batch = lambda step: make_batch(step, xs, ys, cfg)
r = getattr(cfg, 'recipe', cfg)                    # this checkout: the recipe has a class of its own
torch.manual_seed(0)
m = Farmer(cfg); opt = make_optimizer(m, r)
params = [p for p in m.parameters()]
x, y, _ = batch(0)
fwd = torch.compile(m) if compiled else m
try:                                              # this checkout: the training loop's own step
    from farmer.loop import TrainStep
    loop_step = TrainStep(m, opt, r, lambda s, b: (fwd(*b)['loss'], {}))
    def step(s=0):
        xb, yb, _ = batch(s)
        loop_step(s, (xb, yb))
except ImportError:                               # the older code: its loop's step, written out
    def step(s=0):
        xb, yb, _ = batch(s)
        loss = fwd(xb, yb)['loss']
        opt.zero_grad(set_to_none=True); loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, r.grad_clip)
        if torch.isfinite(gn): opt.step()
t_af = m.to_tokens(x)
z = m.af(t_af)[0].detach()
z_I, z_R = m.split(m.to_ar_order(z))
def data(): batch(1)
def af(): (lambda o: (o[0].square().sum() + o[1].sum()).backward())(m.af(t_af))
def ar():
    g_I, g_R = m.ar(z_I, y)
    (g_I.mean.sum() + g_I.log_sigma.sum() + g_I.logits.sum() + (0 if g_R is None else g_R.mean.sum() + g_R.log_sigma.sum())).backward()
with torch.no_grad(): heads = m.ar(z_I, y)
def gmm():
    g_I, g_R = [None if g is None else type(g)(*(t.detach().requires_grad_() for t in (g.logits, g.mean, g.log_sigma))) for g in heads]
    nll_R = m.ar.head_R.nll if hasattr(m.ar.head_R, 'nll') else m._nll_R  # this checkout / the older code
    (-(g_I.log_prob(z_I).sum()) + nll_R(g_R, z_R).sum()).backward()
def optim():
    torch.nn.utils.clip_grad_norm_(params, r.grad_clip); opt.step()
parts = dict(step=step) if compiled else dict(step=step, data=data, af=af, ar=ar, gmm=gmm, optimiser=optim)
for f in parts.values():
    for _ in range(3): f()
times = {k: [] for k in parts}
for _ in range(rounds):
    for k, f in parts.items():
        t = time.perf_counter()
        for _ in range(5): f()
        times[k].append((time.perf_counter() - t) / 5 * 1000)
out = {k: statistics.median(v) for k, v in times.items()}
def gemm_rate(dtype):                              # GEMM rate at the Transformers' shapes (rows = batch x tokens, width, 4 x width)
    rows, W = r.batch_size * cfg.tokens, cfg.af_width
    shapes = [(rows, W, 4 * W), (rows, 4 * W, W), (rows, W, 3 * W)]
    gemms = [(torch.randn(m_, k_).to(dtype), torch.randn(k_, n_).to(dtype)) for m_, k_, n_ in shapes]
    for a_, b_ in gemms: a_ @ b_
    t = time.perf_counter()
    for _ in range(20):
        for a_, b_ in gemms: a_ @ b_
    return 20 * sum(2 * m_ * k_ * n_ for m_, k_, n_ in shapes) / (time.perf_counter() - t) / 1e9
from torch.profiler import profile, ProfilerActivity
shares = lambda ev, pick: sum(e.self_cpu_time_total for e in ev if pick(e.key)) / sum(e.self_cpu_time_total for e in ev)
if compiled:                                      # what the compiled step's time is made of, from the profiler
    with profile(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(5): step()
    ev = p.key_averages()
    out['matmul_share'] = shares(ev, lambda k: k in ('aten::mm', 'aten::addmm', 'aten::bmm'))
    out['attention_share'] = shares(ev, lambda k: 'scaled_dot_product' in k)
    out['fused_share'] = shares(ev, lambda k: 'CompiledFxGraph' in k)
else:                                             # the GEMM rates, and the attention kernels' share of the AF part
    out['gemm_gflops'], out['bf16_gemm_gflops'] = gemm_rate(torch.float32), gemm_rate(torch.bfloat16)
    with profile(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(5): af()
    out['af_attention_share'] = shares(p.key_averages(), lambda k: 'attention' in k)
print(json.dumps(out))
'''


def measure(root: Path, name: str, rounds: int, compiled: bool = False) -> dict:
    env = dict(os.environ, PYTHONPATH=str(root))
    r = subprocess.run(
        [sys.executable, '-c', DRIVER, name, str(rounds), '1' if compiled else '0'],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    if r.returncode:
        raise SystemExit(f'profiling failed ({root}, {name}):\n{r.stderr[-3000:]}')
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--against', default='c9e1402')
    p.add_argument('--presets', default='fashion-mnist,digits')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--out', default=str(ROOT / 'figures' / 'profile-step.json'))
    a = p.parse_args()
    sys.path.insert(0, str(ROOT / 'bench'))
    from train_throughput import worktree

    old, names = worktree(a.against), a.presets.split(',')
    variants = dict(old=(old, False), new=(ROOT, False), compiled=(ROOT, True))
    runs = {n: {v: [] for v in variants} for n in names}
    for _ in range(a.rounds):  # interleaved: machine drift hits every variant alike
        for n in names:
            for v, (root, compiled) in variants.items():
                runs[n][v].append(measure(root, n, 3, compiled))
    res = {
        n: {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in vs.items()}
        for n, vs in runs.items()
    }
    res.update(against=a.against, rounds=a.rounds)
    Path(a.out).write_text(json.dumps(res, indent=1))
    for n in names:
        for v in variants:
            print(
                f"{n:14s} {v:9s} "
                + '  '.join(
                    f"{k} {t:.1f}" + ('' if k.endswith(('share', 'gflops')) else ' ms') for k, t in res[n][v].items()
                )
            )


if __name__ == '__main__':
    main()

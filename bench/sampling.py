"""Sampling cost on the `photo-patches` shape (32x32x3, patch 4: N = 64 tokens of d = 48), timed side by side:
KV-cached vs uncached sampling (AR and AF inverse both), the AR share vs the AF-inverse share of sampling time
(the split of paper Table 5), and each guidance mode relative to unguided sampling. Rounds interleave the variants.
An untrained model (zero-initialised AF, small random heads) has the cost of a trained one.

    python bench/sampling.py [--batch 16] [--rounds 3] [--device auto]     # writes figures/sampling-bench.json
"""

import argparse, json, statistics, time
from pathlib import Path
import torch
from farmer import Farmer, preset
from farmer.af import perturb_parameters
from farmer.runtime import pick_device
from farmer.sampling import Guidance, drawer


def timed(f, dev):
    if dev.type == 'cuda':
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = f()
    if dev.type == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - t, out


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--device', default='auto')
    ap.add_argument('--out', default='figures/sampling-bench.json')
    args = ap.parse_args()
    dev = pick_device(args.device)
    torch.manual_seed(0)
    model = perturb_parameters(Farmer(preset('photo-patches')), 0.02).to(dev).eval()
    y = torch.arange(args.batch, device=dev) % model.cfg.num_classes
    modes = {'none': Guidance(), 'naive': Guidance('naive', w=2.0), 'resample': Guidance('resample', w=2.0)}
    t = {k: [] for k in ('ar_cached', 'ar_uncached', 'af_cached', 'af_uncached', *[f'total_{m}' for m in modes])}
    for r in range(args.rounds):
        g = lambda: torch.Generator(device=dev).manual_seed(r)
        dt, (z_I, z_R) = timed(lambda: model.ar.sample(y, generator=g()), dev)
        t['ar_cached'].append(dt)
        dt, _ = timed(lambda: model.ar.sample(y, generator=g(), cache=False), dev)
        t['ar_uncached'].append(dt)
        z = model.from_ar(z_I, z_R)
        dt, _ = timed(lambda: model.decode(z), dev)
        t['af_cached'].append(dt)
        dt, _ = timed(lambda: model.decode(z, cache=False), dev)
        t['af_uncached'].append(dt)
        for m, gd in modes.items():
            dt, _ = timed(lambda: model.decode(model.from_ar(*model.ar.sample(y, drawer(gd), g()))), dev)
            t[f'total_{m}'].append(dt)
    med = {k: statistics.median(v) for k, v in t.items()}
    cached, uncached = med['ar_cached'] + med['af_cached'], med['ar_uncached'] + med['af_uncached']
    res = dict(
        device=str(dev),
        batch=args.batch,
        seconds=med,
        cache_speedup=round(uncached / cached, 2),
        ar_cache_speedup=round(med['ar_uncached'] / med['ar_cached'], 2),
        af_cache_speedup=round(med['af_uncached'] / med['af_cached'], 2),
        ar_share=round(med['ar_cached'] / cached, 3),
        af_share=round(med['af_cached'] / cached, 3),
        guidance_cost={m: round(med[f'total_{m}'] / med['total_none'], 2) for m in modes},
    )
    print(f"{dev}, batch {args.batch}, median of {args.rounds} interleaved rounds, photo-patches shape (N=64, d=48)")
    print(
        f"cached {cached:.3f} s vs uncached {uncached:.3f} s: {res['cache_speedup']}x (AR {res['ar_cache_speedup']}x, AF inverse {res['af_cache_speedup']}x)"
    )
    print(f"share of cached sampling time: AR {res['ar_share']:.1%}, AF inverse {res['af_share']:.1%}")
    print('cost relative to unguided: ' + ', '.join(f'{m} {v}x' for m, v in res['guidance_cost'].items()))
    Path(args.out).write_text(json.dumps(res, indent=1) + '\n')


if __name__ == '__main__':
    main()

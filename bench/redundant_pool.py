"""How diverse is the redundant step of resampling CFG on a trained model? Samples z^I under the FARMER-1.1B p16 guidance
settings (paper Table 6, w = 2.5), keeps the conditional and unconditional redundant GMMs G_{N+1} of every image, and
measures, for the shared pool and for per-token pools, the effective sample size of the importance weights and the
number of distinct z_R vectors among the N tokens. Also measures delta, the RMS shift between the two mixtures' means
in units of sigma, which the sampling chapter's synthetic sweep uses. Writes figures/redundant-pool.json.

    python bench/redundant_pool.py [--run runs/likelihood/fashion-mnist/d_I=8_lr=0.002_seed=0] [--images 100]
"""

import argparse, json
from pathlib import Path
import torch
from farmer.runs import load_run_model
from farmer.sampling import ResampleCFG, guidance_preset, halves, pool_diversity


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument(
        '--run',
        default='runs/likelihood/fashion-mnist/d_I=8_lr=0.002_seed=0',
        help='a farmer-train run with a channel split',
    )
    ap.add_argument('--images', type=int, default=100)
    ap.add_argument('--out', default='figures/redundant-pool.json')
    args = ap.parse_args()
    if not (Path(args.run) / 'best.safetensors').is_file():
        raise SystemExit(
            f"bench/redundant_pool.py: {args.run} holds no trained run; train one with `python bench/likelihood.py` "
            "or `farmer-train --preset fashion-mnist --out DIR` and pass --run DIR"
        )
    model = load_run_model(args.run, 'best', torch.device('cpu'))
    cfg = model.cfg
    if cfg.dim_R == 0 or cfg.redundant != 'gmm':
        raise SystemExit(f"bench/redundant_pool.py: {args.run} has no redundant GMM (d_I=None or factor-out)")
    gd = guidance_preset('farmer-1.1b-p16')
    y = torch.arange(args.images) % cfg.num_classes
    kept = []

    class Keep(ResampleCFG):
        "Algorithm 1 for the informative tokens; at the redundant step, keep the mixtures (and draw from p_c)."

        def redundant(self, g, tokens, gen):
            kept.append(g)
            return halves(g)[0].expand(tokens).sample(gen)

    with torch.no_grad():
        model.ar.sample(y, Keep(gd), torch.Generator().manual_seed(0))
    c, u = halves(kept[0])
    delta = (((c.mean - u.mean) / u.log_sigma.exp()) ** 2).mean().sqrt().item()
    gen = torch.Generator().manual_seed(1)
    pools = {}
    for pool in ('shared', 'per-token'):
        r = pool_diversity(c, u, guidance_preset('farmer-1.1b-p16', red_pool=pool), cfg.tokens, gen)
        pools[pool] = dict(ess=r['ess'].median().item(), distinct=r['distinct'].float().mean().item())
    res = dict(
        run=args.run,
        d_R=cfg.dim_R,
        K_R=cfg.K_R,
        tokens=cfg.tokens,
        images=args.images,
        guidance='farmer-1.1b-p16',
        pool_size=gd.red_s_c + gd.red_s_u,
        delta=delta,
        pools=pools,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + '\n')
    print(
        f"{args.run}: d_R {cfg.dim_R}, K_R {cfg.K_R}, N {cfg.tokens}, {args.images} images, Table 6 (1.1B p16) guidance, "
        f"{res['pool_size']} candidates per pool; mean shift between p_c and p_u: {delta:.3f} sigma (RMS)"
    )
    for k, v in pools.items():
        print(f"  {k:9s} pool: median ESS {v['ess']:.2f}, distinct z_R per image {v['distinct']:.1f} / {cfg.tokens}")
    print(f"wrote {args.out}")


if __name__ == '__main__':
    main()

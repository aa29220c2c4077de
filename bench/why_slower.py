"""Why FARMER learns more slowly than the AF alone on Fashion-MNIST: screens over the first steps of the long schedule.

The long runs of `bench/likelihood.py --budget long` end with FARMER without the split (flow width 128, K_I = 32) above
the AF alone (width 152, K_I = 1) in validation and test BPD. Two things differ between them: the flow's width and the
prior's number of components. Each screen changes one of them (the others change how FARMER is optimised instead: its
learning rate, its mixture head's alone, or where the mixture's components start) and trains seed 0 of the same recipe (lr 3e-3, the cosine to 30,000 steps) up to
`--until` steps, so its validation curve and training-log terms compare with the two long runs step by step: up to step
s a screen has had the long runs' learning rates. A screen is one run, cut short where the long schedule goes on. The
record (`figures/why-slower.json`: each screen's curve and terms, every row's parameter counts and its gaps to the AF
alone step by step) keeps it, so nothing is trained twice.

    python bench/why_slower.py --train "FARMER, width 152, K=8" --until 10000 [--data-root DIR]
    python bench/why_slower.py          # print the comparison from the record (the likelihood chapter plots it)
    python bench/why_slower.py --mixture --data-root DIR   # also measure each run's use of its mixture (weights on disk)

A screen's directory is named as `bench/likelihood.py` names a run of the same config, so one trained on to 30,000 steps
(`farmer-train --resume DIR`) can be moved under that benchmark's `--runs` and recorded like any other run.
"""

import argparse, json
from pathlib import Path
import torch
from farmer.config import preset
from farmer.data import dequantize_uniform
from farmer.model import param_counts
from farmer.train import ensure_run
from farmer.runtime import load_checkpoint, read_jsonl
from farmer.runs import load_run_model, run_splits
from likelihood import learning_curve, slug

LONG = dict(lr=3e-3, steps=30_000, seed=0)  # the recipe of the long runs (`bench/likelihood.py --budget long`)
REFERENCE = {  # the two long runs, read from figures/likelihood-runs.json
    'FARMER, no split (width 128, K=32)': dict(d_I=None),
    'AF alone (width 152, K=1)': dict(K_I=1, d_I=None, af_width=152),
}
SCREENS = {  # one change each against a long run
    'FARMER, width 152, K=8': dict(d_I=None, af_width=152, K_I=8),  # the AF alone's flow, a mixture prior of 8
    'AF alone, width 128': dict(K_I=1, d_I=None, af_width=128),  # FARMER's flow, a single-Gaussian prior
    'FARMER, width 152, K=32': dict(d_I=None, af_width=152),  # the AF alone's flow, FARMER's prior
    'FARMER, no split, lr 2e-3': dict(d_I=None, lr=2e-3),  # FARMER, a smaller learning rate (the next value of B_LRS)
    'FARMER, no split, head lr x0.3': dict(d_I=None, head_lr=0.3),  # the mixture head slower than the rest
    'FARMER, no split, head lr x0.1': dict(d_I=None, head_lr=0.1),  # slower still (run if x0.3 helps)
    'FARMER, no split, head lr x3': dict(d_I=None, head_lr=3.0),  # faster (run if x0.3 does not help)
    'FARMER, no split, head init 1': dict(d_I=None, head_init=1.0),  # the K components' means start apart, N(0, 1)
}


def params(over: dict) -> dict:
    "Parameters of the flow, the AR body (without its head) and the informative mixture head for a Fashion-MNIST model with `over`."
    c = param_counts(preset('fashion-mnist', **over))
    return dict(c, ar=c['ar'] - c['head_I'])


def screen(label: str, until: int, runs: Path, data_root: str | None) -> dict:
    "Train (or resume) screen `label` to step `until` of the long schedule; its curve, terms and parameter counts."
    over = {**SCREENS[label], **{k: v for k, v in LONG.items() if k not in SCREENS[label]}}
    out = runs / slug(over)
    metrics = out / 'metrics.jsonl'
    done = metrics.is_file() and any(r.get('step') == until and 'val_bpd' in r for r in read_jsonl(metrics))
    if not done:
        ensure_run(
            preset('fashion-mnist', **over), out, stop_at=until, compile=True, progress=False, data_root=data_root
        )
    return dict(over=over, until=until, params=params(over), **learning_curve(metrics))


def mixture_use(run: Path, data_root: str | None, n: int = 300) -> dict:
    "`responsibilities_use` of the best weights of `run` on the first `n` validation images, with the step they are from."
    model, step = load_run_model(run), load_checkpoint(run / 'best.safetensors')[1]['step']
    return dict(
        step=step,
        images=n,
        **responsibilities_use(model, *run_splits(model.cfg, data_root)['val'].batch(torch.arange(n))),
    )


@torch.no_grad()
def responsibilities_use(model, x8: torch.Tensor, y: torch.Tensor) -> dict:
    """How much of its informative mixture `model` uses on uint8 images `x8` `[B, C, H, W]`, averaged over tokens: the
    exponential of the entropy of the mixture weights the AR predicts for a token (how many modes its density has
    weight on before the token is seen) and of its responsibilities (1: one component explains the token; K: all alike),
    how many components are the most responsible one for at least 1% of the tokens, and the 5th and 95th percentiles of
    the σ of each token's most responsible component."""
    x = dequantize_uniform(x8, model.cfg.value_range, generator=torch.Generator().manual_seed(0))
    z, _ = model.encode(x.to(next(model.parameters()).dtype))
    z_I, _ = model.split(model.to_ar_order(z))
    g, _ = model.ar(z_I, model.labels(y, len(x), x.device))
    resp = torch.softmax(g.joint_log_prob(z_I), -1)  # [B, N, K]
    entropy_exp = lambda p: torch.exp(-(p * torch.log(p.clamp_min(1e-30))).sum(-1)).mean().item()
    pi = torch.softmax(g.logits, -1)  # [B, N, K]: the mixture weights the AR predicts before it sees the token
    chosen = resp.argmax(-1)  # [B, N]
    k = chosen[..., None, None].expand(*resp.shape[:-1], 1, g.d)
    sigma = torch.exp(g.log_sigma.gather(-2, k)).flatten()
    return dict(
        K=g.K,
        effective_components=entropy_exp(resp),
        prior_components=entropy_exp(pi),
        chosen_by_1pct=int((torch.bincount(chosen.flatten(), minlength=g.K) >= 0.01 * chosen.numel()).sum()),
        chosen_sigma_5_95=torch.quantile(sigma.float(), torch.tensor([0.05, 0.95])).tolist(),
    )


def reference(record: Path) -> dict:
    "The long runs, as the screens are recorded (from the run record of bench/likelihood.py)."
    runs = json.loads(record.read_text())['fashion-mnist']
    rows = {}
    for label, arch in REFERENCE.items():
        over = dict(arch, **LONG)
        s = runs[slug(over)]['summary']
        rows[label] = dict(over=over, until=LONG['steps'], params=params(over), curve=s['curve'], terms=s['terms'])
    return rows


def compare(rows: dict, base: str = 'AF alone (width 152, K=1)') -> dict:
    """Each row against `base` at every step both evaluated: validation BPD, and the training log's prior NLL and log-det
    (nats per dimension, averaged over the interval before that step), each as row - base."""
    b_val, b_terms = dict(rows[base]['curve']), {t[0]: t for t in rows[base]['terms']}
    out = {}
    for label, r in rows.items():
        val, terms = dict(r['curve']), {t[0]: t for t in r['terms']}
        steps = [s for s in sorted(val) if s in b_val and s in terms and s in b_terms]
        out[label] = [
            dict(
                step=s,
                val=val[s] - b_val[s],
                prior=(terms[s][2] + terms[s][3]) - (b_terms[s][2] + b_terms[s][3]),
                logdet=terms[s][4] - b_terms[s][4],
            )
            for s in steps
        ]
    return out


def late(gaps: dict, until: int, share: float = 0.4) -> dict:
    """Each row's gaps averaged over its evaluations in the last `share` of the first `until` steps (one evaluation moves
    by several hundredths from the next): {'steps': [from, until], 'rows': {label: {'val', 'prior', 'logdet'}}}."""
    lo = (1 - share) * until
    rows = {k: [g for g in v if lo <= g['step'] <= until] for k, v in gaps.items()}
    mean = lambda rs, key: sum(g[key] for g in rs) / len(rs)
    return dict(
        steps=[lo, until],
        rows={k: {key: mean(rs, key) for key in ('val', 'prior', 'logdet')} for k, rs in rows.items() if rs},
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--train', choices=list(SCREENS), help='train (or resume) this screen, then record it')
    p.add_argument('--until', type=int, default=10_000, help='the step of the long schedule a screen stops at')
    p.add_argument('--runs', default='runs/why-slower', help='where screens train')
    p.add_argument('--data-root', default=None)
    p.add_argument('--record', default='figures/likelihood-runs.json', help="the long runs' record")
    p.add_argument('--out', default='figures/why-slower.json')
    p.add_argument(
        '--mixture', action='store_true', help="measure each row's use of its mixture from its best weights on disk"
    )
    p.add_argument(
        '--long-runs', default='runs/likelihood-long/fashion-mnist', help='where the long runs are (--mixture)'
    )
    a = p.parse_args()
    out = Path(a.out)
    old = json.loads(out.read_text()) if out.is_file() else {}
    read = lambda: json.loads(out.read_text())['screens'] if out.is_file() else {}
    trained = screen(a.train, a.until, Path(a.runs), a.data_root) if a.train else None
    screens = read()  # read after training: another screen may have been recorded meanwhile
    if trained:
        screens[a.train] = trained
    rows = {**reference(Path(a.record)), **screens}
    gaps = compare(rows)
    until = min((r['until'] for r in screens.values()), default=LONG['steps'])  # the step every screen reached
    mixture = old.get('mixture', {})
    for label, r in rows.items() if a.mixture else ():
        for run in (
            Path(a.runs) / slug(r['over']),
            Path(a.long_runs) / slug(r['over']),
        ):  # a screen trained on moves there
            if (run / 'best.safetensors').is_file():
                mixture[label] = mixture_use(run, a.data_root)
                break
    record = dict(
        screens=screens,
        params={k: r['params'] for k, r in rows.items()},
        gaps=gaps,
        late=late(gaps, until),
        mixture=mixture,
    )
    tmp = out.with_name(out.name + '.tmp')
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(out)
    for label, g in gaps.items():
        at = {row['step']: row for row in g}
        shown = [s for s in (2000, 5000, 10000, 20000, 30000) if s in at]
        print(
            f"{label:36s} {rows[label]['params']['total'] / 1e6:.2f}M: "
            + '; '.join(
                f"{s:,}: val {at[s]['val']:+.3f}, prior {at[s]['prior']:+.3f}, log-det {at[s]['logdet']:+.3f}"
                for s in shown
            )
        )
    for label, m in mixture.items():
        print(
            f"{label:36s} best weights at step {m['step']:,}: of {m['K']} components, {m['prior_components']:.2f} weighted by "
            f"the prior and {m['effective_components']:.2f} responsible per token, {m['chosen_by_1pct']} chosen for 1% of tokens or more, σ of the chosen one {m['chosen_sigma_5_95'][0]:.2f}-{m['chosen_sigma_5_95'][1]:.2f} (5-95%)"
        )


if __name__ == '__main__':
    main()

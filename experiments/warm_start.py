"""Warm start: does FARMER's mixture prior pay once it starts from the single Gaussian it contains?

The AF alone at FARMER's flow (Fashion-MNIST, width 128, K_I = 1, no split) trains to `WARM_STEP` of the 30,000-step
likelihood schedule (lr 3e-3, cosine). Its checkpoint is then copied into K_I = 32 (`widen_checkpoint`: every component
that Gaussian, equal weights, the means jittered by `JITTER`, the optimizer's moments copied per component), and both
arms go on to step 30,000 from that same state: same batches, same dequantisation noise, same learning rates. If K = 32
ends below K = 1, the mixture pays once it is optimised; if not, it does not pay on this data at this size.

    python -m experiments run warm_start [--max-new-runs N] --data-root DIR

The record (`figures/warm-start-runs.json`) keeps per run its config, validation curve, training-log terms and test
summary, and for a widened arm its validation BPD at the warm step beside the K = 1 model's (they must agree to the
jitter's order); each run's per-image test BPDs go to `figures/warm-start-images.safetensors`, so the arms meet image
by image. The output (`figures/warm-start.json`) is, per seed, K = 32 minus K = 1 in validation and test BPD, and over
the seeds the mean difference with its t-interval.
"""

import json
from pathlib import Path
import torch
from safetensors.torch import load_file
from farmer.config import preset
from farmer.model import Farmer
from farmer.loop import make_optimizer
from farmer.analysis import effect
from farmer.train import ensure_run
from farmer.runtime import load_checkpoint, save_checkpoint, read_jsonl
from farmer.runs import heldout_bpd, model_from_weights, run_splits
from experiments import FIGURES, Experiment, Run
from experiments.records import learning_curve, keep_images

WARM_STEP, STEPS, LR, K, JITTER = 10_000, 30_000, 3e-3, 32, 0.01
SEEDS = (0, 1, 2)
IMAGES = FIGURES / 'warm-start-images.safetensors'


def arm_config(K_I: int, seed: int):
    "The likelihood recipe at FARMER's flow (width 128, no split) with a K_I-component informative prior."
    return preset('fashion-mnist', K_I=K_I, d_I=None, af_width=128, lr=LR, steps=STEPS, seed=seed)


def head_index(cfg) -> tuple[list[str], str]:
    "The parameter names in the optimizer's order (`opt.<i>.*` of a checkpoint) and the informative head's prefix."
    model = Farmer(cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    return [
        names[id(p)] for g in make_optimizer(model, cfg.recipe).param_groups for p in g['params']
    ], 'ar.head_I.proj.'


def widen_rows(t: torch.Tensor, K: int, d: int, jitter: float = 0.0, gen=None) -> torch.Tensor:
    """Rows `[1 + 2d, ...]` of a one-component `GMMHead` (logit, means, raw log σ) -> `[K(1 + 2d), ...]`: K copies of the
    component; `jitter` adds N(0, jitter²) to every copy's means."""
    logit, mean, raw = t.split([1, d, d], 0)
    mean = mean.repeat(K, *[1] * (t.ndim - 1))
    if jitter:
        mean = mean + jitter * torch.randn(mean.shape, generator=gen, dtype=mean.dtype)
    return torch.cat([logit.repeat(K, *[1] * (t.ndim - 1)), mean, raw.repeat(K, *[1] * (t.ndim - 1))], 0)


def widen_checkpoint(tensors: dict, meta: dict, cfg, jitter: float = JITTER, seed: int = 0) -> tuple[dict, dict]:
    """A K_I = 1 checkpoint -> one of `cfg` (the same model with cfg.K_I components): the head's rows copied per component
    (`widen_rows`), and their Adam moments too, scaled by 1/K and 1/K² (with K equal components each one's gradient is
    1/K of the single Gaussian's, so every copy takes the step the single Gaussian would take), the loop state kept but its best validation score dropped (the widened arm
    chooses its best weights among its own evaluations)."""
    names, head = head_index(cfg)
    gen, d, out = torch.Generator().manual_seed(seed), cfg.dim_I, {}
    for key, v in tensors.items():
        if key.startswith('model.' + head):
            v = widen_rows(v, cfg.K_I, d, jitter, gen)
        elif key.startswith('opt.') and key.count('.') >= 2 and not key.endswith('.step'):
            i = int(key.split('.')[1])
            if names[i].startswith(head):  # each copy gets 1/K of the K = 1 gradient: Adam's moments scaled to match
                v = widen_rows(v, cfg.K_I, d) / (cfg.K_I if key.endswith('exp_avg') else cfg.K_I**2)
        out[key] = v
    loop = {k: v for k, v in meta['loop'].items() if not k.startswith('best_')}
    return out, dict(meta, config=cfg.to_dict(), loop=loop, warm_from=dict(K_I=1, step=loop['step'], jitter=jitter))


TRAIN = dict(compile=True, progress=True)


def warm_arm(seed: int) -> Run:
    "The widened arm: the K = 1 trunk trained to `WARM_STEP` (in the K = 1 arm's directory), copied into K = 32, trained on."
    cK = arm_config(K, seed)

    def train(out: Path, data_root: str | None) -> Path:
        k1 = out.parent / f'k1-s{seed}'
        if not (out / 'checkpoint.safetensors').is_file():
            ensure_run(arm_config(1, seed), k1, stop_at=WARM_STEP, data_root=data_root, **TRAIN)
            widen_run(k1, out, cK, seed, data_root)
        ensure_run(cK, out, data_root=data_root, **TRAIN)
        return out

    return Run(f'k{K}-s{seed}', cK, train)


def widen_run(k1: Path, out: Path, cK, seed: int, data_root: str | None) -> None:
    """Start run directory `out` from the K = 1 run `k1` at its checkpoint (step `WARM_STEP`): the widened checkpoint, the
    config, the metrics up to that step, and both models' validation BPD there (`warm_start.json`)."""
    tensors, meta = load_checkpoint(k1 / 'checkpoint.safetensors')
    if meta['loop']['step'] != WARM_STEP:
        raise ValueError(f"{k1} is at step {meta['loop']['step']}, not the warm step {WARM_STEP}")
    wide, wmeta = widen_checkpoint(tensors, meta, cK, seed=seed)
    out.mkdir(parents=True)
    (out / 'config.json').write_text(json.dumps(cK.to_dict(), indent=1))
    rows = [r for r in read_jsonl(k1 / 'metrics.jsonl') if r['step'] <= WARM_STEP]
    (out / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    save_checkpoint(out / 'checkpoint.safetensors', wide, wmeta)
    val, strip = run_splits(cK, data_root)['val'], lambda t: {k[6:]: v for k, v in t.items() if k.startswith('model.')}
    score = lambda t, c: heldout_bpd(model_from_weights(strip(t), c.to_dict()), val)[0]
    start = {'val_bpd_k1': score(tensors, arm_config(1, seed)), f'val_bpd_k{K}': score(wide, cK)}
    (out / 'warm_start.json').write_text(json.dumps(start))


def plain_arm(seed: int) -> Run:
    "The K = 1 arm: the same trunk trained on to the end of the schedule (resumed from the warm step when it is there)."
    c1 = arm_config(1, seed)

    def train(out: Path, data_root: str | None) -> Path:
        ensure_run(c1, out, data_root=data_root, **TRAIN)
        return out

    return Run(f'k1-s{seed}', c1, train, after=(f'k{K}-s{seed}',))


def keep(run: Path, r: Run) -> dict:
    "The summary, curve and terms of a finished arm, its per-image test BPDs kept, and the widened arm's start."
    keep_images(IMAGES, r.key, run)
    s = json.loads((run / 'summary.json').read_text())
    warm = run / 'warm_start.json'
    return dict(
        summary=s,
        **learning_curve(run / 'metrics.jsonl'),
        **({'warm': json.loads(warm.read_text())} if warm.is_file() else {}),
    )


def summarize(record: dict) -> dict:
    """Per seed with both arms: K = 32 minus K = 1 in best validation BPD and in test BPD (mean over test images, and
    image by image with its interval); over the seeds with both arms, the test difference's mean and t-interval."""
    images = load_file(IMAGES) if IMAGES.is_file() else {}
    per_seed = {}
    for seed in SEEDS:
        a, b = record.get(f'k{K}-s{seed}'), record.get(f'k1-s{seed}')
        if not (a and b):
            continue
        d = dict(
            val=a['summary']['best_val_bpd'] - b['summary']['best_val_bpd'],
            test=a['summary']['test_bpd'] - b['summary']['test_bpd'],
            warm=a.get('warm'),
        )
        if f'k{K}-s{seed}' in images and f'k1-s{seed}' in images:
            d['test_images'] = effect(images[f'k1-s{seed}'].tolist(), images[f'k{K}-s{seed}'].tolist(), paired=True)
        per_seed[str(seed)] = d
    over = (
        effect([0.0] * len(per_seed), [d['test'] for d in per_seed.values()], paired=True)
        if len(per_seed) > 1
        else None
    )
    return dict(K=K, warm_step=WARM_STEP, steps=STEPS, jitter=JITTER, per_seed=per_seed, over_seeds=over)


EXPERIMENT = Experiment(
    name='warm_start',
    about=f'K = {K} started from the K = 1 model at step {WARM_STEP:,} of {STEPS:,}, against K = 1 (Fashion-MNIST)',
    grid=lambda: [r for s in SEEDS for r in (warm_arm(s), plain_arm(s))],
    keep=keep,
    summarize=summarize,
)

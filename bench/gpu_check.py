"""One command that tells whether the CUDA path is right, on the current device, in under 10 minutes.

    python bench/gpu_check.py [--data-root DIR] [--steps 300] [--rows bf16,af_inverse,memory,speed[,compile]] [--out FILE.json]   # on a GPU
    python bench/gpu_check.py --smoke                              # a tiny version of every row, on any device (a test runs it)

Rows:
1. Training under bf16 autocast against fp32 on the same seeds (`--seeds`, 2): validation BPD of the `fashion-mnist`
   preset after `--steps` steps, scored in fp32 (aim: within 0.01 bits or the fp32 runs' seed spread), and the fp32
   weights scored under bf16. Without Fashion-MNIST under the data root it uses `digits`.
2. The AF inverse of `imagenet256-1.1b` at full size with random weights, batch 2: decode(encode(x)) against x
   (aim: 1e-2 in fp32), and no NaN; bf16, uncached and fp64 beside it.
3. Peak memory per GPU of a few training steps of each ImageNet preset at its batch per GPU (8 GPUs, the README's
   plan; halved until it fits), against `farmer.budget`'s prediction, and the sustained TFLOP/s, from which the GPU-hours
   of the paper's 320 epochs follow. The same steps at half that batch split the peak into a fixed part (weights,
   gradients, optimizer state) and a part per image (activations), each set against the budget's own two terms.
4. Images per second of `fashion-mnist` training and sampling (synthetic images of the right shape).
5. Paper scale (`paper_scale`): the held-out scoring of 64 images of `imagenet256-1.1b` at full size in fp32, one
   batch (`Recipe.eval_batch`), and the 1.9B model's training step at 32 images per GPU with activation checkpointing
   (`Recipe.checkpointing`), unsharded and under FSDP2 on one GPU (`--shard fsdp`): peak memory and seconds of each.
6. Only with `--rows ...,compile` (7 minutes more on an H200): the 556M and 1.1B steps under `torch.compile`, as
   `farmer-train --compile` runs them: compile time, step time and peak memory against eager.

With `--out`, the JSON is rewritten after each row, so a run stopped by a time limit keeps the rows it finished.
"""

import argparse, json, math, tempfile, time, traceback
from pathlib import Path
import torch
import torch.distributed as dist
from farmer.af import perturb_parameters
from farmer.budget import budget
from farmer.config import preset, IMAGENET_TRAIN_IMAGES
from farmer.data import data_root, dequantize_uniform
from farmer.loop import TrainStep, make_optimizer
from farmer.model import Farmer
from farmer.runtime import pick_device, autocast, native_bf16, shard_model
from farmer.sampling import generate
from farmer.train import train
from farmer.runs import run_splits, heldout_bpd, load_run_model

TINY = dict(
    af_blocks=2,
    af_layers=1,
    af_width=32,
    af_heads=2,
    ar_layers=1,
    ar_width=32,
    ar_heads=2,
    K_I=4,
    K_R=4,
    cond_repeat=2,
    red_head_width=None,
)  # --smoke: every preset shrunk to this


def sync(dev):
    if dev.type == 'cuda':
        torch.cuda.synchronize()


def loop_step(net, model, cfg, dev) -> TrainStep:
    """The training loop's own step (learning rate, forward and backward under the device's autocast, clipping, update,
    host sync) of `model` through `net` (the model, or its compiled forward), called as `step(i, (x, y))`."""

    def loss(step, batch):
        with autocast(dev):
            return net(*batch)['loss'], {}

    return TrainStep(model, make_optimizer(model, cfg.recipe), cfg.recipe, loss)


def bf16_vs_fp32(dev, steps: int, root, smoke: bool, seeds: int = 2) -> dict:
    """Row 1: the same run trained in fp32 and under bf16 autocast, for each of `seeds` seeds, both scored in fp32 (as
    training scores); with two seeds or more, the fp32 runs' spread says how large a difference training noise alone
    makes. Also the fp32-trained weights scored under bf16 autocast: why held-out BPD is always scored in fp32."""
    name = 'fashion-mnist' if (Path(data_root(root)) / 'FashionMNIST').is_dir() else 'digits'
    over = dict(steps=steps, eval_every=steps, val_images=300 if name == 'digits' else 2000)
    if smoke:
        over.update(TINY, steps=6, eval_every=6, batch_size=16)
    out, scored_bf16, runs = dict(fp32=[], bf16=[]), [], {}
    val = run_splits(preset(name, **over), root)['val']
    for seed in range(seeds):
        for prec in ('fp32', 'bf16'):
            run = runs[prec] = Path(tempfile.mkdtemp()) / prec
            s, _ = train(
                preset(name, **over, seed=seed), run, device=str(dev), data_root=root, progress=False, precision=prec
            )
            out[prec].append(s['final_val_bpd'])
        scored_bf16.append(heldout_bpd(load_run_model(runs['fp32'], 'best', dev), val, dev, precision='bf16')[0])
    diff = sum(b - f for b, f in zip(out['bf16'], out['fp32'])) / seeds
    spread = max(out['fp32']) - min(out['fp32'])
    return out | dict(
        dataset=name,
        steps=over['steps'],
        diff=diff,
        fp32_seed_spread=spread,
        fp32_trained_scored_bf16=scored_bf16,
        ok=abs(diff) < max(0.01, spread) or smoke,
    )


@torch.no_grad()
def af_inverse(dev, smoke: bool) -> dict:
    """Row 2: decode(encode(x)) of the 1.1B model's AF at full size, random weights moved by 0.01·N(0, 1) from the identity
    init (latent std about 9): encoded in fp32 (the check), under bf16 autocast (how far the sequential inverse carries
    bf16's rounding), in fp32 without the KV cache, and in fp64, decoded in the encoding's float type. At 0.02 the random
    flow is chaotic: on an H200 even fp64 missed x by 0.11, so that scale tests conditioning, not the code."""
    cfg = preset('imagenet256-1.1b', **(dict(TINY, image_size=32, patch=8, d_I=16) if smoke else {}))
    with torch.device(dev):
        model = Farmer(cfg)
    perturb_parameters(model.af, 0.01)
    x = dequantize_uniform(torch.randint(0, 256, (2, 3, cfg.image_size, cfg.image_size), dtype=torch.uint8)).to(dev)
    out = dict(preset='imagenet256-1.1b' + (' (smoke: tiny)' if smoke else ''))
    for prec in ('fp32', 'bf16', 'fp32-uncached', 'fp64'):
        m, xp = (model.double(), x.double()) if prec == 'fp64' else (model, x)
        t = time.time()
        with autocast(dev, 'bf16' if prec == 'bf16' else 'fp32'):
            z, _ = m.encode(xp)
        xr = m.decode(z.to(xp.dtype), cache=prec != 'fp32-uncached')
        sync(dev)
        out[prec] = dict(
            max_abs_error=(xr - xp).abs().max().item(), finite=bool(torch.isfinite(xr).all()), seconds=time.time() - t
        )
    return out | dict(ok=out['fp32']['finite'] and out['fp32']['max_abs_error'] < 1e-2)


def _peak_and_step(
    cfg, dev, b: int, steps: int, compile: str | None = None, shard: bool = False
) -> tuple[float, float, float]:
    "Peak GiB, fastest step and first step (s) of `steps` bf16 training steps of `cfg` at `b` images, compiled with `compile` as backend, sharded by FSDP2 with `shard`."
    torch.manual_seed(0)
    model = Farmer(cfg).to(dev)
    if shard:  # one rank: FSDP2's own cost (its gathers and bf16 copies), against the unsharded step
        if not dist.is_initialized():
            dist.init_process_group(
                'nccl' if dev.type == 'cuda' else 'gloo', store=dist.HashStore(), rank=0, world_size=1
            )
        shard_model(model, [*model.af.blocks, *model.ar.net.layers], bf16=True)
    net = torch.compile(model, backend=compile) if compile else model
    step = loop_step(net, model, cfg, dev)
    x = dequantize_uniform(torch.randint(0, 256, (b, cfg.channels, cfg.image_size, cfg.image_size), dtype=torch.uint8))
    y = torch.randint(0, max(cfg.num_classes, 1), (b,)) if cfg.num_classes else None
    batch = (x.to(dev), y.to(dev) if y is not None else None)
    if dev.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(steps):
        sync(dev)
        t = time.perf_counter()
        step(i, batch)
        sync(dev)
        times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == 'cuda' else float('nan')
    return peak, min(times[1:] or times), times[0]


def _imagenet_cfg(name: str, smoke: bool):
    return preset(name, **(dict(TINY, image_size=32, patch=8, d_I=16 if 'imagenet256' in name else 4) if smoke else {}))


def memory_and_flops(dev, name: str, smoke: bool, gpus: int = 8, steps: int = 3) -> dict:
    """Row 3: a few bf16 training steps of an ImageNet preset at its batch per GPU (halved until it fits), then at half
    that batch: peak = fixed + batch × per image, fitted from the two."""
    cfg = _imagenet_cfg(name, smoke)
    b = cfg.recipe.batch_size // gpus
    while True:
        try:
            peak, step, _ = _peak_and_step(cfg, dev, b, steps)
            break
        except torch.OutOfMemoryError:
            if b == 1:
                raise
            torch.cuda.empty_cache()
            b //= 2
    half = _peak_and_step(cfg, dev, b // 2, steps)[0] if b >= 2 else float('nan')
    per_image = (peak - half) / (b - b // 2) if b >= 2 else float('nan')
    pred = budget(cfg.replace(batch_size=b), gpus=1)
    tflops = pred['train_flops_per_image'] * b / step / 1e12
    hours = 320 * IMAGENET_TRAIN_IMAGES * pred['train_flops_per_image'] / (tflops * 1e12) / 3600
    return dict(
        preset=name,
        batch_per_gpu=b,
        peak_gib=peak,
        predicted_gib=pred['memory_gib'],
        peak_gib_half_batch=half,
        fitted_fixed_gib=peak - b * per_image,
        predicted_state_gib=pred['state_gib'],
        fitted_gib_per_image=per_image,
        predicted_activation_gib_per_image=pred['activation_gib'] / b,
        step_s=step,
        tflops=tflops,
        gpu_hours_320_epochs=hours,
    )


def compiled(dev, name: str, smoke: bool, b: int, steps: int = 4) -> dict:
    """Row 5: `torch.compile` of the training forward (as `farmer-train --compile`), at `b` images per GPU (row 3's):
    first step (compiling) and fastest step against eager, and peak memory. On --smoke the backend is 'eager' (tracing
    only: a CPU would spend minutes in inductor)."""
    cfg = _imagenet_cfg(name, smoke)
    pred = budget(cfg.replace(batch_size=b), gpus=1)
    peak_e, step_e, _ = _peak_and_step(cfg, dev, b, 3)
    torch._dynamo.reset()
    peak_c, step_c, first = _peak_and_step(cfg, dev, b, steps, compile='eager' if smoke else 'inductor')
    return dict(
        preset=name,
        batch_per_gpu=b,
        eager_step_s=step_e,
        compiled_step_s=step_c,
        speedup=step_e / step_c,
        compile_s=first - step_c,
        eager_peak_gib=peak_e,
        compiled_peak_gib=peak_c,
        compiled_tflops=pred['train_flops_per_image'] * b / step_c / 1e12,
    )


def fashion_speed(dev, smoke: bool) -> dict:
    "Row 4: images per second of fashion-mnist training steps and of sampling (unguided, KV-cached)."
    cfg = preset('fashion-mnist', **(TINY if smoke else {}))
    torch.manual_seed(0)
    model = Farmer(cfg).to(dev)
    step = loop_step(model, model, cfg, dev)
    x = dequantize_uniform(torch.randint(0, 256, (cfg.recipe.batch_size, 1, 28, 28), dtype=torch.uint8)).to(dev)
    y = torch.randint(0, 10, (cfg.recipe.batch_size,), device=dev)
    n = 3 if smoke else 30
    for i in range(n + 3):
        if i == 3:
            sync(dev)
            t = time.perf_counter()
        step(i, (x, y))
    sync(dev)
    train_ips = n * cfg.recipe.batch_size / (time.perf_counter() - t)
    model.eval()
    m = 20 if smoke else 500
    sync(dev)
    t = time.perf_counter()
    generate(model, torch.arange(m, device=dev) % 10, generator=torch.Generator(device=dev).manual_seed(0))
    sync(dev)
    return dict(train_images_per_s=train_ips, sample_images_per_s=m / (time.perf_counter() - t))


def paper_scale(dev, smoke: bool) -> dict:
    "Row 5: peak GiB and seconds of scoring 64 images of the 1.1B preset (no gradients, fp32), and of a checkpointed 1.9B step at 32 images."
    cfg, tag = _imagenet_cfg('imagenet256-1.1b', smoke), ' (smoke: tiny)' if smoke else ''
    torch.manual_seed(0)
    model, n = Farmer(cfg).to(dev).eval(), 4 if smoke else 64
    x = dequantize_uniform(torch.randint(0, 256, (n, cfg.channels, cfg.image_size, cfg.image_size), dtype=torch.uint8))
    if dev.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    sync(dev)
    t = time.perf_counter()
    with torch.no_grad():
        bpd = model(x.to(dev), torch.zeros(n, dtype=torch.long, device=dev))['bpd']
    sync(dev)
    score_s, score_peak = (
        time.perf_counter() - t,
        torch.cuda.max_memory_allocated() / 2**30 if dev.type == 'cuda' else float('nan'),
    )
    del model
    big = _imagenet_cfg('imagenet256-1.9b', smoke).replace(checkpointing=True)
    peak, step, _ = _peak_and_step(big, dev, 2 if smoke else 32, 3)
    peak_f, step_f, _ = _peak_and_step(big, dev, 2 if smoke else 32, 3, shard=True)
    return dict(
        scoring=dict(
            preset='imagenet256-1.1b' + tag,
            images=n,
            peak_gib=score_peak,
            seconds=score_s,
            finite=bool(bpd.isfinite().all()),
        ),
        checkpointed=dict(
            preset='imagenet256-1.9b' + tag, images_per_gpu=2 if smoke else 32, peak_gib=peak, step_s=step
        ),
        checkpointed_fsdp_one_gpu=dict(peak_gib=peak_f, step_s=step_f),
        ok=bool(bpd.isfinite().all()),
    )


def row(f, *args) -> dict:
    "`f(*args)`, or `{'error': one line, 'ok': False}` with the traceback on stderr: a failing row does not hide the others."
    try:
        return f(*args)
    except Exception as e:
        traceback.print_exc()
        return dict(error=f'FAILED: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ""}', ok=False)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--smoke', action='store_true', help='a tiny version of every row (any device, seconds)')
    p.add_argument('--steps', type=int, default=300)
    p.add_argument('--seeds', type=int, default=2, help='row 1: runs of each precision (2+ also give the seed spread)')
    p.add_argument('--data-root')
    p.add_argument('--device', default='auto')
    p.add_argument('--out', help='also write the rows as JSON here')
    p.add_argument(
        '--rows', default='bf16,af_inverse,memory,speed,paper_scale', help='which rows to run (comma-separated)'
    )
    a = p.parse_args()
    dev = pick_device(a.device)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'
    print(
        f'device: {dev} ({name}), native bf16: {native_bf16(dev)}, torch {torch.__version__}'
        + (' - smoke run' if a.smoke else '')
    )
    want, rows = a.rows.split(',') + (['compile'] if a.smoke else []), {}  # --smoke: tracing only, seconds
    skipped = dict(error='not run (--rows)', ok=True)
    names = ('imagenet64-556m', 'imagenet256-1.1b', 'imagenet256-1.9b')
    fit = lambda: {m['preset']: m['batch_per_gpu'] for m in rows.get('memory', []) if 'batch_per_gpu' in m}
    todo = dict(
        bf16=lambda: row(bf16_vs_fp32, dev, a.steps, a.data_root, a.smoke, a.seeds),
        af_inverse=lambda: row(af_inverse, dev, a.smoke),
        memory=lambda: [row(memory_and_flops, dev, n, a.smoke) for n in names],
        speed=lambda: row(fashion_speed, dev, a.smoke),
        paper_scale=lambda: row(paper_scale, dev, a.smoke),
        compile=lambda: [  # at the batch row 3 found to fit (the README's 32 per GPU without it)
            row(compiled, dev, n, a.smoke, fit().get(n, 32)) for n in names[:2]
        ],
    )
    for key, f in todo.items():  # each row written as soon as it is done
        rows[key] = f() if key in want else ([skipped] if key in ('memory', 'compile') else skipped)
        print(f'row {key}: done', flush=True)
        if a.out:
            Path(a.out).write_text(json.dumps(rows, indent=1))
    print('| check | result |\n|---|---|')
    r = rows['bf16']
    print(
        f"| bf16 vs fp32 | {r['error']} |"
        if 'error' in r
        else f"| trained in bf16 vs fp32, {r['dataset']} after {r['steps']} steps, {len(r['fp32'])} seed(s), scored in fp32 | "
        f"validation BPD fp32 {', '.join(f'{v:.4f}' for v in r['fp32'])}, bf16 {', '.join(f'{v:.4f}' for v in r['bf16'])}: "
        f"difference {r['diff']:+.4f} ({'ok' if r['ok'] else 'MORE THAN 0.01 AND THE SEED SPREAD'}), fp32 seed spread "
        f"{r['fp32_seed_spread']:.4f}; the fp32-trained weights scored under bf16 "
        f"{', '.join(f'{v:.4f}' for v in r['fp32_trained_scored_bf16'])} |"
    )
    r = rows['af_inverse']
    if 'error' in r:
        print(f"| AF inverse, batch 2 | {r['error']} |")
    for prec in () if 'error' in r else ('fp32', 'bf16', 'fp32-uncached', 'fp64'):
        e = r[prec]
        print(
            f"| AF inverse of {r['preset']}, batch 2, {prec} | max abs error {e['max_abs_error']:.2e}, finite: {e['finite']}, "
            f"{e['seconds']:.1f} s"
            + (f" ({'ok' if r['ok'] else 'FAILED'}) |" if prec == 'fp32' else ' (shown, not checked) |')
        )
    for r in rows['memory']:
        print(
            f"| memory and speed | {r['error']} |"
            if 'error' in r
            else f"| {r['preset']}: {r['batch_per_gpu']} images per GPU | peak {r['peak_gib']:.1f} GiB (budget "
            f"{r['predicted_gib']:.1f} GiB), {r['step_s']:.3f} s/step, {r['tflops']:.1f} TFLOP/s: "
            f"{r['gpu_hours_320_epochs']:,.0f} GPU-hours for 320 epochs |"
        )
    for r in rows['memory']:
        if 'fitted_fixed_gib' in r:
            print(
                f"| {r['preset']}: memory split (peak {r['peak_gib_half_batch']:.1f} GiB at half the batch) | fixed "
                f"{r['fitted_fixed_gib']:.1f} GiB (budget's state {r['predicted_state_gib']:.1f}), per image "
                f"{r['fitted_gib_per_image']:.3f} GiB (budget's activations {r['predicted_activation_gib_per_image']:.3f}) |"
            )
    for r in rows['compile']:
        print(
            f"| torch.compile | {r['error']} |"
            if 'error' in r
            else f"| {r['preset']} compiled, {r['batch_per_gpu']} images per GPU | {r['compiled_step_s']:.3f} s/step against "
            f"eager {r['eager_step_s']:.3f} (x{r['speedup']:.2f}), {r['compiled_tflops']:.1f} TFLOP/s, compiling "
            f"{r['compile_s']:.0f} s, peak {r['compiled_peak_gib']:.1f} GiB against eager {r['eager_peak_gib']:.1f} |"
        )
    r = rows['speed']
    print(
        f"| fashion-mnist speed | {r['error']} |"
        if 'error' in r
        else f"| fashion-mnist | training {r['train_images_per_s']:,.0f} images/s, sampling {r['sample_images_per_s']:,.1f} images/s |"
    )
    r = rows['paper_scale']
    if 'error' in r:
        print(f"| paper scale | {r['error']} |")
    else:
        sc, ck = r['scoring'], r['checkpointed']
        print(
            f"| held-out scoring, {sc['preset']}, {sc['images']} images, fp32 | peak {sc['peak_gib']:.1f} GiB, {sc['seconds']:.1f} s |\n"
            f"| {ck['preset']}, {ck['images_per_gpu']} images per GPU, activation checkpointing | peak {ck['peak_gib']:.1f} GiB, "
            f"step {ck['step_s']:.2f} s |\n| the same, FSDP2 on one GPU | peak {r['checkpointed_fsdp_one_gpu']['peak_gib']:.1f} GiB, "
            f"step {r['checkpointed_fsdp_one_gpu']['step_s']:.2f} s |"
        )
    if any(
        not r.get('ok', True)
        for r in (
            rows['bf16'],
            rows['af_inverse'],
            *rows['memory'],
            rows['speed'],
            rows['paper_scale'],
            *rows['compile'],
        )
    ):
        raise SystemExit(1)


if __name__ == '__main__':
    main()

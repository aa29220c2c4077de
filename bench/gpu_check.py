"""One command that tells whether the CUDA path is right, on the current device, in under 10 minutes.

    python bench/gpu_check.py [--data-root DIR] [--steps 300]      # on a GPU machine
    python bench/gpu_check.py --smoke                              # a tiny version of every row, on any device (a test runs it)

Rows:
1. bf16 autocast against fp32 on the same seed: validation BPD of the `fashion-mnist` preset after `--steps` steps
   (aim: within 0.01 bits). Without Fashion-MNIST under the data root it says so and uses `digits`.
2. The AF inverse of `imagenet256-1.1b` at full size with random weights, batch 2: decode(encode(x)) against x, and
   no NaN.
3. Peak memory per GPU of a few training steps of each ImageNet preset at its batch per GPU (8 GPUs, the README's
   plan; halved until it fits), against `farmer.budget`'s prediction, and the sustained TFLOP/s, from which the GPU-hours
   of the paper's 320 epochs follow.
4. Images per second of `fashion-mnist` training and sampling (synthetic images of the right shape).
"""

import argparse, json, math, tempfile, time
from pathlib import Path
import torch
from farmer.af import perturb_parameters
from farmer.budget import budget
from farmer.config import preset, IMAGENET_TRAIN_IMAGES
from farmer.data import data_root, dequantize_uniform
from farmer.loop import TrainStep, make_optimizer
from farmer.model import Farmer
from farmer.runtime import pick_device, autocast, native_bf16
from farmer.sampling import generate
from farmer.train import train

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


def loop_step(model, cfg, dev) -> TrainStep:
    "The training loop's own step (learning rate, forward and backward under the device's autocast, clipping, update, host sync), called as `step(i, (x, y))`."

    def loss(step, batch):
        with autocast(dev):
            return model(*batch)['loss'], {}

    return TrainStep(model, make_optimizer(model, cfg.recipe), cfg.recipe, loss)


def bf16_vs_fp32(dev, steps: int, root, smoke: bool) -> dict:
    "Row 1: the same run in fp32 and under bf16 autocast."
    name = 'fashion-mnist' if (Path(data_root(root)) / 'FashionMNIST').is_dir() else 'digits'
    over = dict(steps=steps, eval_every=steps, val_images=300 if name == 'digits' else 2000)
    if smoke:
        over.update(TINY, steps=6, eval_every=6, batch_size=16)
    out = {}
    for prec in ('fp32', 'bf16'):
        s, _ = train(
            preset(name, **over),
            Path(tempfile.mkdtemp()) / prec,
            device=str(dev),
            data_root=root,
            progress=False,
            precision=prec,
        )
        out[prec] = s['final_val_bpd']
    return dict(
        dataset=name,
        steps=over['steps'],
        fp32=out['fp32'],
        bf16=out['bf16'],
        diff=out['bf16'] - out['fp32'],
        ok=abs(out['bf16'] - out['fp32']) < 0.01 or smoke,
    )


@torch.no_grad()
def af_inverse(dev, smoke: bool) -> dict:
    "Row 2: decode(encode(x)) of the 1.1B model's AF at full size, random weights."
    cfg = preset('imagenet256-1.1b', **(dict(TINY, image_size=32, patch=8, d_I=16) if smoke else {}))
    with torch.device(dev):
        model = Farmer(cfg)
    perturb_parameters(model.af, 0.02)
    x = dequantize_uniform(torch.randint(0, 256, (2, 3, cfg.image_size, cfg.image_size), dtype=torch.uint8)).to(dev)
    t = time.time()
    with autocast(dev):
        z, _ = model.encode(x)
    xr = model.decode(z.float())
    sync(dev)
    err = (xr - x).abs().max().item()
    return dict(
        preset='imagenet256-1.1b' + (' (smoke: tiny)' if smoke else ''),
        max_abs_error=err,
        finite=bool(torch.isfinite(xr).all()),
        seconds=time.time() - t,
        ok=bool(torch.isfinite(xr).all()) and err < 1e-2,
    )


def memory_and_flops(dev, name: str, smoke: bool, gpus: int = 8, steps: int = 3) -> dict:
    "Row 3: a few bf16 training steps of an ImageNet preset at its batch per GPU (halved until it fits)."
    cfg = preset(name, **(dict(TINY, image_size=32, patch=8, d_I=16 if 'imagenet256' in name else 4) if smoke else {}))
    b = cfg.recipe.batch_size // gpus
    while True:
        try:
            torch.manual_seed(0)
            model = Farmer(cfg).to(dev)
            step = loop_step(model, cfg, dev)
            x = dequantize_uniform(
                torch.randint(0, 256, (b, cfg.channels, cfg.image_size, cfg.image_size), dtype=torch.uint8)
            ).to(dev)
            y = torch.randint(0, max(cfg.num_classes, 1), (b,), device=dev) if cfg.num_classes else None
            if dev.type == 'cuda':
                torch.cuda.reset_peak_memory_stats()
            times = []
            for i in range(steps):
                sync(dev)
                t = time.perf_counter()
                step(i, (x, y))
                sync(dev)
                times.append(time.perf_counter() - t)
            peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == 'cuda' else float('nan')
            break
        except torch.OutOfMemoryError:
            if b == 1:
                raise
            model = opt = None
            torch.cuda.empty_cache()
            b //= 2
    pred = budget(cfg.replace(batch_size=b), gpus=1)
    step = min(times[1:] or times)
    tflops = pred['train_flops_per_image'] * b / step / 1e12
    hours = 320 * IMAGENET_TRAIN_IMAGES * pred['train_flops_per_image'] / (tflops * 1e12) / 3600
    return dict(
        preset=name,
        batch_per_gpu=b,
        peak_gib=peak,
        predicted_gib=pred['memory_gib'],
        step_s=step,
        tflops=tflops,
        gpu_hours_320_epochs=hours,
    )


def fashion_speed(dev, smoke: bool) -> dict:
    "Row 4: images per second of fashion-mnist training steps and of sampling (unguided, KV-cached)."
    cfg = preset('fashion-mnist', **(TINY if smoke else {}))
    torch.manual_seed(0)
    model = Farmer(cfg).to(dev)
    step = loop_step(model, cfg, dev)
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


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--smoke', action='store_true', help='a tiny version of every row (any device, seconds)')
    p.add_argument('--steps', type=int, default=300)
    p.add_argument('--data-root')
    p.add_argument('--device', default='auto')
    p.add_argument('--out', help='also write the rows as JSON here')
    a = p.parse_args()
    dev = pick_device(a.device)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'
    print(
        f'device: {dev} ({name}), native bf16: {native_bf16(dev)}, torch {torch.__version__}'
        + (' - smoke run' if a.smoke else '')
    )
    rows = dict(
        bf16=bf16_vs_fp32(dev, a.steps, a.data_root, a.smoke),
        af_inverse=af_inverse(dev, a.smoke),
        memory=[memory_and_flops(dev, n, a.smoke) for n in ('imagenet64-556m', 'imagenet256-1.1b', 'imagenet256-1.9b')],
        speed=fashion_speed(dev, a.smoke),
    )
    r = rows['bf16']
    print(
        f"| check | result |\n|---|---|\n| bf16 vs fp32, {r['dataset']} after {r['steps']} steps | validation BPD fp32 {r['fp32']:.4f}, "
        f"bf16 {r['bf16']:.4f}, difference {r['diff']:+.4f} ({'ok' if r['ok'] else 'MORE THAN 0.01'}) |"
    )
    r = rows['af_inverse']
    print(
        f"| AF inverse of {r['preset']}, batch 2 | max abs error {r['max_abs_error']:.2e}, finite: {r['finite']}, {r['seconds']:.1f} s "
        f"({'ok' if r['ok'] else 'FAILED'}) |"
    )
    for r in rows['memory']:
        print(
            f"| {r['preset']}: {r['batch_per_gpu']} images per GPU | peak {r['peak_gib']:.1f} GiB (budget {r['predicted_gib']:.1f} GiB), "
            f"{r['step_s']:.3f} s/step, {r['tflops']:.1f} TFLOP/s: {r['gpu_hours_320_epochs']:,.0f} GPU-hours for 320 epochs |"
        )
    r = rows['speed']
    print(
        f"| fashion-mnist | training {r['train_images_per_s']:,.0f} images/s, sampling {r['sample_images_per_s']:,.1f} images/s |"
    )
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1))
    if not (rows['bf16']['ok'] and rows['af_inverse']['ok']):
        raise SystemExit(1)


if __name__ == '__main__':
    main()

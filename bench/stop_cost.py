"""What stopping cleanly costs a training step: the stop flag's share of the step's all-reduce, and the checkpoint clock.

Under `torchrun` the loop sends every rank's stop flag with the step's values in the one all-reduce it already makes
(`farmer.loop.optimise`). This script measures, side by side in one run:

- that all-reduce under gloo on two processes (the CPU backend), with the flag (7 values: the `fashion-mnist` step's
  loss, bpd, nll_I, nll_R, logdet, σ and the flag) and without it (6), and an all-reduce of the flag alone (what a
  collective of its own would cost), interleaved over `--reps` repetitions, medians;
- a training step of the `fashion-mnist` preset (forward, backward, AdamW; one process, eager), median of `--steps`;
- writing its checkpoint (weights, AdamW moments, RNG; `save_checkpoint`, fsync included), against the default
  clock of one checkpoint every 15 minutes.

    python bench/stop_cost.py [--reps 2000] [--steps 20] [--out figures/stop-cost.json]
"""

import argparse, json, os, statistics, tempfile, time
from pathlib import Path
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from farmer.config import preset
from farmer.loop import make_optimizer, checkpoint_contents
from farmer.model import Farmer
from farmer.runtime import save_checkpoint


def _all_reduce_times(rank: int, reps: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    torch.set_num_threads(1)
    times = {'6 values': [], '7 values (with the flag)': [], 'the flag alone': []}
    sizes = dict(zip(times, (6, 7, 1)))
    for _ in range(reps):
        for name, n in sizes.items():  # interleaved, so that the machine's drift hits all three alike
            t = torch.rand(n)
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            times[name].append(time.perf_counter() - t0)
    if rank == 0:
        Path(out).write_text(json.dumps({k: statistics.median(v) * 1e6 for k, v in times.items()}))
    dist.destroy_process_group()


def step_and_checkpoint_times(steps: int) -> dict:
    "Median seconds of a `fashion-mnist` training step and of writing its checkpoint."
    cfg = preset('fashion-mnist')
    model = Farmer(cfg)
    opt = make_optimizer(model, cfg.recipe)
    x = torch.rand(cfg.recipe.batch_size, cfg.channels, cfg.image_size, cfg.image_size) * 2 - 1
    y = torch.randint(0, cfg.num_classes, (cfg.recipe.batch_size,))
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        model(x, y)['loss'].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    saves = []
    with tempfile.TemporaryDirectory(dir='.') as d:  # on the disk runs go to, not a RAM-backed /tmp
        for _ in range(5):
            t0 = time.perf_counter()
            save_checkpoint(
                Path(d) / 'checkpoint.safetensors', *checkpoint_contents(model, opt, {'step': 0}, cfg.to_dict())
            )
            saves.append(time.perf_counter() - t0)
        size = (Path(d) / 'checkpoint.safetensors').stat().st_size
    return dict(step_s=statistics.median(times[2:]), checkpoint_s=statistics.median(saves), checkpoint_mb=size / 2**20)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--reps', type=int, default=2000, help='all-reduces of each kind')
    p.add_argument('--steps', type=int, default=20, help='training steps timed')
    p.add_argument('--out', default='figures/stop-cost.json')
    a = p.parse_args()
    with tempfile.NamedTemporaryFile(suffix='.json') as f:
        mp.spawn(_all_reduce_times, args=(a.reps, 29511, f.name), nprocs=2)
        us = json.loads(Path(f.name).read_text())
    s = step_and_checkpoint_times(a.steps)
    step_us, clock_s = s['step_s'] * 1e6, 15 * 60
    res = dict(
        all_reduce_us=us,
        flag_extra_us=us['7 values (with the flag)'] - us['6 values'],
        flag_extra_pct_of_step=100 * (us['7 values (with the flag)'] - us['6 values']) / step_us,
        separate_flag_pct_of_step=100 * us['the flag alone'] / step_us,
        step_ms=s['step_s'] * 1e3,
        checkpoint_s=s['checkpoint_s'],
        checkpoint_mb=s['checkpoint_mb'],
        checkpoint_pct_at_15_min=100 * s['checkpoint_s'] / clock_s,
        machine=f'{os.cpu_count()} CPUs, torch {torch.__version__}',
    )
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(
        f"all-reduce under gloo, two processes (median µs): "
        + ', '.join(f'{k} {v:.1f}' for k, v in us.items())
        + f"\nfashion-mnist training step: {res['step_ms']:.0f} ms; the flag adds {res['flag_extra_us']:+.1f} µs "
        f"({res['flag_extra_pct_of_step']:+.3f}% of a step); an all-reduce of its own would cost "
        f"{res['separate_flag_pct_of_step']:.3f}%\ncheckpoint: {res['checkpoint_mb']:.1f} MB in {res['checkpoint_s']:.2f} s, "
        f"{res['checkpoint_pct_at_15_min']:.3f}% of training time at one every 15 minutes"
    )


if __name__ == '__main__':
    main()

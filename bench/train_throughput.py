"""Training throughput (images/s) of the `digits-small` and `photo-patches` presets and of the same models with K=1 and no
split (the AF-only, TARFlow-like baseline), timed side by side: rounds interleave the four models so that machine noise
hits them alike. Peak memory: on a GPU the CUDA memory one step allocates beyond the resident model; on CPU the peak RSS (VmHWM, Linux) of a child process that builds the model and runs 3 steps.

    python bench/train_throughput.py [--rounds 5] [--steps 10] [--device auto]
"""
import argparse, json, statistics, subprocess, sys, time
import torch
from farmer import Farmer, FarmerConfig
from farmer.runtime import pick_device, autocast
from farmer.train import make_optimizer

VARIANTS = {'digits-small': ('digits-small', {}), 'digits-small K=1 no split': ('digits-small', dict(K_I=1, d_I=None)),
            'photo-patches': ('photo-patches', {}), 'photo-patches K=1 no split': ('photo-patches', dict(K_I=1, d_I=None))}

def setup(name, device):
    preset, kw = VARIANTS[name]
    cfg = FarmerConfig.preset(preset, **kw)
    torch.manual_seed(0)
    model = Farmer(cfg).to(device); opt = make_optimizer(model, cfg)
    x = torch.rand(cfg.batch_size, cfg.channels, cfg.image_size, cfg.image_size, device=device) * 2 - 1
    y = torch.randint(0, max(cfg.num_classes, 1), (cfg.batch_size,), device=device)
    def step():
        with autocast(device): loss = model(x, y)['loss']
        opt.zero_grad(); loss.backward(); opt.step()
    return cfg, step

def peak_memory_cpu(name):
    code = (f"import torch, sys; sys.argv=['x']; sys.path.insert(0, 'bench'); import train_throughput as b; "
            f"cfg, step = b.setup({name!r}, torch.device('cpu')); [step() for _ in range(3)]; "
            f"print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")   # this process's peak RSS, kB
    return int(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout) / 1024  # MiB

def peak_memory_cuda(step):
    torch.cuda.synchronize(); base = torch.cuda.memory_allocated(); torch.cuda.reset_peak_memory_stats()
    step(); torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20   # activations + gradients + optimizer state, MiB

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--rounds', type=int, default=5); ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--device', default='auto'); args = ap.parse_args()
    dev = pick_device(args.device)
    runs = {n: setup(n, dev) for n in VARIANTS}
    for _, step in runs.values(): step(); step()                                  # warm-up
    rates = {n: [] for n in VARIANTS}
    for _ in range(args.rounds):
        for n, (cfg, step) in runs.items():
            if dev.type == 'cuda': torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(args.steps): step()
            if dev.type == 'cuda': torch.cuda.synchronize()
            rates[n].append(cfg.batch_size * args.steps / (time.perf_counter() - t))
    res = {}
    for n in VARIANTS:
        mem = peak_memory_cuda(runs[n][1]) if dev.type == 'cuda' else peak_memory_cpu(n)
        res[n] = dict(images_per_s=round(statistics.median(rates[n]), 1), peak_mem_mib=round(mem, 1))
    for p in ('digits-small', 'photo-patches'):
        res[p]['ratio_to_af_only'] = round(res[p]['images_per_s'] / res[f'{p} K=1 no split']['images_per_s'], 3)
    print(f"device: {dev}, {torch.get_num_threads()} threads, median of {args.rounds} interleaved rounds of {args.steps} steps")
    print(f"{'model':28s} {'images/s':>10s} {'peak MiB':>10s} {'FARMER / AF-only':>18s}")
    for n, r in res.items(): print(f"{n:28s} {r['images_per_s']:10.1f} {r['peak_mem_mib']:10.1f} {r.get('ratio_to_af_only', ''):>18}")
    print(json.dumps(res))

if __name__ == '__main__': main()

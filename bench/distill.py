"""AF-inverse speed and quality of the three decoders, side by side in one run: the sequential (KV-cached) teacher
inverse, Jacobi decoding, and the one-pass distilled student (`farmer-distill`).

Speed is measured in two regimes, per image, for two token counts (the `digits` shape, N = 16 tokens of d = 4, and the
`photo-patches` shape, N = 64 tokens of d = 48), with perturbed weights (a trained model costs the same):
- latency, batch 1: one image at a time, as in interactive use; every sequential step is too small to fill the device,
  so the cost is the number of sequential steps. This is the regime of the paper's Table 5 speed-up.
- throughput, a large batch (default 256): each sequential step does enough arithmetic to fill the device, so the KV-cached
  teacher does about the same arithmetic as the student's parallel pass and the speed-up shrinks.
AF reverse alone and whole sampling (AR + AF reverse) are timed; rounds interleave the decoders so that machine noise
hits them alike. Quality needs a trained teacher and its student: `--run DIR` (default runs/digits) gives the held-out
reconstruction error of each decoder (images decoded from the teacher's latents of held-out images) and the FID (offline
extractor) of 1,000 samples decoded each way (the same latents for every decoder).

With `--claim`, the distillation row of the README's claims table (figures/claims.json) is recorded from this run: quality
is kept if the student's FID is within 10% of the teacher's (the paper: +1.4%), and the inverse is fast if the student's
AF reverse is at least 5x faster than the teacher's in the latency regime at the larger token count (the paper: 22x);
the verdict is 'yes' when both hold, else 'no', in the column of the run's dataset.

    python bench/distill.py [--run runs/digits] [--batches 1,256] [--rounds 3] [--claim]
"""
import argparse, json, statistics, time
from pathlib import Path
import torch
from farmer import Farmer, FarmerConfig
from farmer.af import perturb_parameters
from farmer.data import load_dataset, to_model_space
from farmer.distill import Student, jacobi_decoder, student_decoder, load_student
from farmer.sampling import generate
from farmer.runtime import load_run_model

def timed(f):
    t = time.perf_counter(); f(); return time.perf_counter() - t

def speed(shape: str, batch: int, rounds: int) -> dict:
    "Seconds per image of the AF reverse and of whole sampling for each decoder (median of `rounds` interleaved rounds)."
    torch.manual_seed(0)
    model = perturb_parameters(Farmer(preset(shape)), 0.02).eval()
    decs = {'teacher': model.decode, 'jacobi': jacobi_decoder(model, 1e-4), 'student': student_decoder(model, Student(model.af).eval())}
    y = torch.arange(batch) % model.cfg.num_classes
    z = model.from_ar(*model.ar.sample(y, torch.Generator().manual_seed(0)))
    rev, total = {k: [] for k in decs}, {k: [] for k in decs}
    for r in range(rounds):
        for k, d in decs.items():
            rev[k].append(timed(lambda: d(z)) / batch)
            total[k].append(timed(lambda: generate(model, y, generator=torch.Generator().manual_seed(r), decode=None if k == 'teacher' else d)) / batch)
    rev, total = ({k: statistics.median(v) for k, v in t.items()} for t in (rev, total))
    return dict(tokens=model.cfg.tokens, reverse_s=rev, sampling_s=total,
                reverse_speedup={k: round(rev['teacher'] / v, 2) for k, v in rev.items()},
                sampling_speedup={k: round(total['teacher'] / v, 2) for k, v in total.items()})

@torch.no_grad()
def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--run', default='runs/digits'); ap.add_argument('--batches', default='1,256')
    ap.add_argument('--shapes', default='digits,photo-patches'); ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--out', help='also write the results as JSON here')
    ap.add_argument('--claim', action='store_true', help="record the claims table's distillation row (needs a student in --run)"); args = ap.parse_args()
    res = dict(threads=torch.get_num_threads(), speed={})
    print(f"CPU, {torch.get_num_threads()} threads, seconds per image, median of {args.rounds} interleaved rounds; speed-up over the KV-cached teacher")
    for shape in args.shapes.split(','):
        for b in map(int, args.batches.split(',')):
            s = res['speed'][f'{shape} batch {b}'] = speed(shape, b, args.rounds)
            regime = 'latency' if b == 1 else 'throughput'
            print(f"{shape} (N = {s['tokens']}), batch {b} ({regime}):")
            for k in s['reverse_s']:
                print(f"  {k:8s} AF reverse {s['reverse_s'][k] * 1e3:8.2f} ms ({s['reverse_speedup'][k]:5.2f}x)   "
                      f"whole sampling {s['sampling_s'][k] * 1e3:8.2f} ms ({s['sampling_speedup'][k]:5.2f}x)")
    run = Path(args.run)
    if (run / 'student.safetensors').is_file():
        from farmer.eval import sample_scores
        from farmer.sampling import Guidance
        m = load_run_model(run)
        xt, yt = load_dataset(m.cfg.dataset, 'test', image_size=m.cfg.image_size)
        x = to_model_space(xt, m.cfg.value_range)
        zt, _ = m.encode(x)
        tdecs = {'teacher': m.decode, 'jacobi': jacobi_decoder(m, 1e-4), 'student': student_decoder(m, load_student(run, m))}
        q = {k: dict(recon_mse=((d(zt) - x) ** 2).mean().item(),
                     fid=sample_scores(m, Guidance(), xt, 1000, 0, f'farmer-{m.cfg.dataset}', decode=None if k == 'teacher' else d)['fid'])
             for k, d in tdecs.items()}
        res['quality'], res['dataset'] = q, m.cfg.dataset
        print(f"quality on {run} (held-out {m.cfg.dataset}, 1,000 unguided samples, the same latents for every decoder):")
        for k, v in q.items(): print(f"  {k:8s} reconstruction MSE {v['recon_mse']:.2e}   FID {v['fid']:.3f}")
    else: print(f"no student in {run}: run `farmer-distill --run {run}` for the quality rows")
    if args.claim:
        if 'quality' not in res: raise SystemExit(f"bench/distill.py: --claim needs a student in {run}; run `farmer-distill --run {run}` first")
        record(res, args)
    if args.out: Path(args.out).write_text(json.dumps(res, indent=1) + '\n')

def record(res: dict, args):
    "The claims-table row for distillation, from this run's numbers."
    from farmer.analysis import analysis_setup, record_claim
    q, sp = res['quality'], res['speed']
    big = max(sp, key=lambda k: (sp[k]['tokens'], -int(k.rsplit(' ', 1)[1])))        # most tokens, smallest batch
    lat = {k: v for k, v in sp.items() if k.endswith(' batch 1')}
    thr = {k: v for k, v in sp.items() if not k.endswith(' batch 1')}
    keeps, fast = q['student']['fid'] <= 1.1 * q['teacher']['fid'], sp[big]['reverse_speedup']['student'] >= 5
    fmt = lambda d: ', '.join(f"{v['reverse_speedup']['student']:.1f}× (N = {v['tokens']})" for v in d.values())
    whole = ', '.join(f"{v['sampling_speedup']['student']:.1f}×" for v in lat.values())
    ours = (f"FID {q['teacher']['fid']:.2f} → {q['student']['fid']:.2f} (`{args.run}`); AF inverse one image at a time {fmt(lat)}, "
            f"whole sampling {whole}; at batch {int(next(iter(thr)).rsplit(' ', 1)[1]) if thr else '-'} {fmt(thr)} (CPU)")
    v = 'yes' if keeps and fast else 'no'
    record_claim(analysis_setup(fast=False, dataset=res['dataset']), 'distillation', 'one-step distillation keeps quality at a large speed-up (Tables 4–5)',
                 'FID 5.55 → 5.63, AF inverse 22× faster', ours, '`bench/distill.py --claim`, `nbs/13_distill.ipynb`', reproduces=v)
    print(f"recorded the distillation claim: {v} - {ours}")

if __name__ == '__main__': main()

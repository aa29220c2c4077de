"""AF-inverse speed and quality of the three decoders, side by side in one run: the sequential (KV-cached) teacher
inverse, Jacobi decoding, and the one-pass distilled student (`farmer-distill`).

Speed is measured in two regimes, per image, for two token counts (the `digits` shape, N = 16 tokens of d = 4, and the
`photo-patches` shape, N = 64 tokens of d = 48), with perturbed weights (a trained model costs the same):
- latency, batch 1: one image at a time, as in interactive use; every sequential step is too small to fill the device,
  so the cost is the number of sequential steps. This is the regime of the paper's Table 5 speed-up.
- throughput, a large batch (default 256): each sequential step does enough arithmetic to fill the device, so the KV-cached
  teacher does about the same arithmetic as the student's parallel pass and the speed-up shrinks.
AF reverse alone and whole sampling (AR + AF reverse) are timed; rounds interleave the decoders so that machine noise
hits them alike. Quality needs a trained teacher and its student: `--run DIR` (default runs/digits) gives the validation
reconstruction error of each decoder (images decoded from the teacher's latents of validation images) and the FID (offline
extractor, against the validation images) of 1,000 samples decoded each way (the same latents for every decoder). The
distillation claim of the claims table is the ablation chapter's, measured there on every seed of the chapter model.

    python bench/distill.py [--run runs/digits] [--batches 1,256] [--rounds 3] [--out figures/distill-bench.json]
"""

import argparse, json, statistics, time
from pathlib import Path
import torch
from farmer import Farmer, preset
from farmer.af import perturb_parameters
from farmer.data import load_dataset, to_model_space
from farmer.distill import Student, jacobi_decoder, student_decoder, load_student
from farmer.eval import sample_scores
from farmer.sampling import Guidance, generate
from farmer.runs import load_run_model


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def speed(shape: str, batch: int, rounds: int) -> dict:
    "Seconds per image of the AF reverse and of whole sampling for each decoder (median of `rounds` interleaved rounds)."
    torch.manual_seed(0)
    model = perturb_parameters(Farmer(preset(shape)), 0.02).eval()
    decs = {
        'teacher': model.decode,
        'jacobi': jacobi_decoder(model, 1e-4),
        'student': student_decoder(model, Student(model.af).eval()),
    }
    y = torch.arange(batch) % model.cfg.num_classes
    z = model.from_ar(*model.ar.sample(y, generator=torch.Generator().manual_seed(0)))
    rev, total = {k: [] for k in decs}, {k: [] for k in decs}
    for r in range(rounds):
        for k, d in decs.items():
            rev[k].append(timed(lambda: d(z)) / batch)
            total[k].append(
                timed(
                    lambda: generate(
                        model, y, generator=torch.Generator().manual_seed(r), decode=None if k == 'teacher' else d
                    )
                )
                / batch
            )
    rev, total = ({k: statistics.median(v) for k, v in t.items()} for t in (rev, total))
    return dict(
        tokens=model.cfg.tokens,
        reverse_s=rev,
        sampling_s=total,
        reverse_speedup={k: round(rev['teacher'] / v, 2) for k, v in rev.items()},
        sampling_speedup={k: round(total['teacher'] / v, 2) for k, v in total.items()},
    )


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--run', default='runs/digits')
    ap.add_argument('--batches', default='1,256')
    ap.add_argument('--shapes', default='digits,photo-patches')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--out', help='also write the results as JSON here')
    args = ap.parse_args()
    res = dict(threads=torch.get_num_threads(), speed={})
    print(
        f"CPU, {torch.get_num_threads()} threads, seconds per image, median of {args.rounds} interleaved rounds; speed-up over the KV-cached teacher"
    )
    for shape in args.shapes.split(','):
        for b in map(int, args.batches.split(',')):
            s = res['speed'][f'{shape} batch {b}'] = speed(shape, b, args.rounds)
            regime = 'latency' if b == 1 else 'throughput'
            print(f"{shape} (N = {s['tokens']}), batch {b} ({regime}):")
            for k in s['reverse_s']:
                print(
                    f"  {k:8s} AF reverse {s['reverse_s'][k] * 1e3:8.2f} ms ({s['reverse_speedup'][k]:5.2f}x)   "
                    f"whole sampling {s['sampling_s'][k] * 1e3:8.2f} ms ({s['sampling_speedup'][k]:5.2f}x)"
                )
    run = Path(args.run)
    if (run / 'student.safetensors').is_file():
        m = load_run_model(run)
        xt, yt = load_dataset(m.cfg.dataset, 'val', image_size=m.cfg.image_size, val_images=m.cfg.val_images)
        x = to_model_space(xt, m.cfg.value_range)
        zt, _ = m.encode(x)
        tdecs = {
            'teacher': m.decode,
            'jacobi': jacobi_decoder(m, 1e-4),
            'student': student_decoder(m, load_student(run, m)),
        }
        q = {
            k: dict(
                recon_mse=((d(zt) - x) ** 2).mean().item(),
                fid=sample_scores(
                    m, Guidance(), xt, 1000, 0, f'farmer-{m.cfg.dataset}', decode=None if k == 'teacher' else d
                )['fid'],
            )
            for k, d in tdecs.items()
        }
        res['quality'], res['dataset'] = q, m.cfg.dataset
        print(
            f"quality on {run} (validation {m.cfg.dataset}, 1,000 unguided samples, the same latents for every decoder):"
        )
        for k, v in q.items():
            print(f"  {k:8s} reconstruction MSE {v['recon_mse']:.2e}   FID {v['fid']:.3f}")
    else:
        print(f"no student in {run}: run `farmer-distill --run {run}` for the quality rows")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1) + '\n')


if __name__ == '__main__':
    main()

"""AF-inverse speed and quality of the three decoders, side by side in one run: the sequential (KV-cached) teacher
inverse, Jacobi decoding, and the one-pass distilled student (`farmer-distill`).

Timing uses the `photo-patches` shape (N = 64 tokens, d = 48) with perturbed weights (a trained model costs the same),
reverse pass alone and whole sampling. Quality needs a trained teacher and its student: `--run DIR` (default
runs/digits-small) gives the held-out reconstruction error of each decoder (the images decoded from the teacher's latents of
held-out images) and the FID (offline extractor) of 1,000 samples decoded each way.

    python bench/distill.py [--run runs/digits-small] [--batch 16] [--rounds 3]
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

@torch.no_grad()
def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--run', default='runs/digits-small'); ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--rounds', type=int, default=3); args = ap.parse_args()
    torch.manual_seed(0)
    model = perturb_parameters(Farmer(FarmerConfig.preset('photo-patches')), 0.02).eval()
    decs = {'teacher': model.decode, 'jacobi': jacobi_decoder(model, 1e-4), 'student': student_decoder(model, Student(model.af).eval())}
    y = torch.arange(args.batch) % model.cfg.num_classes
    z = model.from_ar(*model.ar.sample(y, torch.Generator().manual_seed(0)))
    rev, total = {k: [] for k in decs}, {k: [] for k in decs}
    for r in range(args.rounds):
        for k, d in decs.items():
            rev[k].append(timed(lambda: d(z)))
            total[k].append(timed(lambda: generate(model, y, generator=torch.Generator().manual_seed(r), decode=None if k == 'teacher' else d)))
    rev, total = ({k: statistics.median(v) for k, v in t.items()} for t in (rev, total))
    res = dict(reverse_s=rev, sampling_s=total, reverse_speedup={k: round(rev['teacher'] / v, 2) for k, v in rev.items()},
               sampling_speedup={k: round(total['teacher'] / v, 2) for k, v in total.items()})
    print(f"photo-patches shape, batch {args.batch}, median of {args.rounds} interleaved rounds (CPU threads: {torch.get_num_threads()})")
    for k in decs: print(f"  {k:8s} AF reverse {rev[k]:.4f} s ({res['reverse_speedup'][k]}x)   whole sampling {total[k]:.3f} s ({res['sampling_speedup'][k]}x)")
    run = Path(args.run)
    if (run / 'student.safetensors').is_file():
        from farmer.eval import sample_scores
        from farmer.sampling import Guidance
        m = load_run_model(run)
        xt, yt = load_dataset(m.cfg.dataset, 'test')
        x = to_model_space(xt)
        zt, _ = m.encode(x)
        tdecs = {'teacher': m.decode, 'jacobi': jacobi_decoder(m, 1e-4), 'student': student_decoder(m, load_student(run, m))}
        q = {k: dict(recon_mse=((d(zt) - x) ** 2).mean().item(),      # FID as farmer-eval computes it (same latents for every decoder)
                     fid=sample_scores(m, Guidance(), xt, 1000, 0, f'farmer-{m.cfg.dataset}', decode=None if k == 'teacher' else d)['fid'])
             for k, d in tdecs.items()}
        res['quality'] = q
        print(f"quality on {run} (held-out {m.cfg.dataset}):")
        for k, v in q.items(): print(f"  {k:8s} reconstruction MSE {v['recon_mse']:.2e}   FID {v['fid']:.3f}")
    print(json.dumps(res))

if __name__ == '__main__': main()

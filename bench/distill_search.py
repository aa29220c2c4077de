"""What it takes to train the one-pass student to the teacher's quality: distillation recipes run side by side on one
teacher, each scored at several step counts by the FID of 1,000 unguided samples decoded by the student (offline
extractor, against the validation images; the same AR latents as the teacher's FID) and the student's validation error per
block: the distillation default is chosen here, on validation. Every row changes one
setting from the row it names. Each row distils into runs/distill-search/<teacher>/<row> (a copy of the teacher's best
weights) and resumes exactly where it stopped, so the search can be run in parts. Writes figures/distill-search.json,
which the distillation chapter plots.

    python bench/distill_search.py [--run runs/digits] [--rows all] [--stops 250,500,1000,2000]
"""

import argparse, json, shutil
from pathlib import Path
import torch
from farmer.data import load_dataset
from farmer.distill import DistillConfig, Student, distill, block_errors, student_decoder
from farmer.eval import sample_scores
from farmer.runtime import load_checkpoint, strip_prefix
from farmer.runs import load_run_model
from farmer.sampling import Guidance

ROWS = {  # name: DistillConfig overrides (steps are set by --stops)
    'algorithm-2': dict(),  # the paper's recipe: data path, s ~ U[0, 0.3], lr 3e-4
    'lr-1e-3': dict(lr=1e-3),
    'lr-1e-3-prior-0.5': dict(lr=1e-3, prior_frac=0.5),  # half of each batch from the teacher's own samples
    'lr-1e-3-noise-0.1': dict(lr=1e-3, max_noise=0.1),
}


def score(model, student, xt, clf_name):
    fid = sample_scores(model, Guidance(), xt, 1000, 0, clf_name, decode=student_decoder(model, student.eval()))['fid']
    return dict(fid=fid, block_mse=block_errors(model, student, xt))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--run', default='runs/digits')
    ap.add_argument('--rows', default='all')
    ap.add_argument('--stops', default='250,500,1000,2000')
    ap.add_argument('--out', default='figures/distill-search.json')
    args = ap.parse_args()
    teacher_run, stops = Path(args.run), [int(s) for s in args.stops.split(',')]
    model = load_run_model(teacher_run)
    xt, _ = load_dataset(model.cfg.dataset, 'val', image_size=model.cfg.image_size, val_images=model.cfg.val_images)
    name = f'farmer-{model.cfg.dataset}'
    out = Path(args.out)
    res = json.loads(out.read_text()) if out.is_file() else {}
    key = str(teacher_run)
    res.setdefault(key, dict(rows={}))
    if 'teacher_fid' not in res[key]:
        res[key]['teacher_fid'] = sample_scores(model, Guidance(), xt, 1000, 0, name)['fid']
        res[key]['jacobi_free_student'] = score(
            model, Student(model.af), xt, name
        )  # the untrained student: one Jacobi step per block
    print(
        f"teacher {teacher_run}: FID {res[key]['teacher_fid']:.3f}; untrained student FID {res[key]['jacobi_free_student']['fid']:.3f}"
    )
    for row in ROWS if args.rows == 'all' else args.rows.split(','):
        d = Path('runs/distill-search') / teacher_run.name / row
        d.mkdir(parents=True, exist_ok=True)
        for f in ('config.json', 'best.safetensors'):
            if not (d / f).exists():
                shutil.copy(teacher_run / f, d / f)
        dc = DistillConfig(steps=stops[-1], eval_every=stops[-1], **ROWS[row])
        rec = res[key]['rows'].setdefault(row, dict(overrides=ROWS[row], points={}))
        for s in stops:
            if str(s) in rec['points']:
                continue
            distill(d, dc, resume=(d / 'distill-checkpoint.safetensors').exists(), stop_at=s, progress=False)
            tensors, meta = load_checkpoint(d / 'distill-checkpoint.safetensors')
            st = Student(model.af)
            st.load_state_dict(strip_prefix(tensors, 'model.'))
            rec['points'][str(s)] = p = score(model, st, xt, name)
            p['distill_wall_s'] = round(meta['loop']['wall_s'], 1)
            out.write_text(json.dumps(res, indent=1) + '\n')
            print(
                f"{row:22s} step {s:5d}: FID {p['fid']:.3f} ({p['fid'] / res[key]['teacher_fid'] - 1:+.1%} vs teacher), "
                f"validation MSE per block {' '.join(f'{m:.1e}' for m in p['block_mse'])}",
                flush=True,
            )


if __name__ == '__main__':
    main()

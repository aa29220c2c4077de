"""The distillation claim at budget B: Algorithm 2 on each kept Fashion-MNIST chapter model (`data/budget-B/`, the
no-split seeds 0-2 that `python bench/sample_models.py` trains), recorded in the budget-B column of figures/claims.json.

It is the ablation chapter's measurement (`farmer.ablations.distillation_claim`: the unguided test FID of the same 1,000
samples of z decoded by teacher and student, paired over the model seeds, and one image's AF inverse timed both ways) on
the converged models, with the margin the sample issue sets at B: the student within 3% of its teacher (the paper's
student loses 1.4%). Each student is kept in runs/analysis/fashion-mnist-B/model-seed<s>/ and reused.

    python bench/distill_kept.py [--steps 1000] [--margin 0.03]
"""

import argparse
from farmer.ablations import distillation_claim
from farmer.analysis import analysis_setup
from farmer.distill import DistillConfig


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--steps', type=int, default=1000, help='distillation steps per model')
    ap.add_argument(
        '--margin', type=float, default=0.03, help="the student's FID at most this fraction above its teacher's"
    )
    args = ap.parse_args()
    a = analysis_setup(fast=False, dataset='fashion-mnist', budget='B')
    try:
        e = distillation_claim(
            a,
            args.margin,
            DistillConfig(steps=args.steps, eval_every=max(1, args.steps // 4)),
            where='`python bench/distill_kept.py`',
        )
    except ValueError as err:  # a model not kept yet: one line saying how to get it
        raise SystemExit(f"distill_kept: {err}")
    ((name, m),) = e['effects'].items()
    print(
        f"distillation at B: {e['reproduces']} - {e['ours']}; {name}: {m['effect']:+.2f} [{m['lo']:+.2f}, {m['hi']:+.2f}]"
    )


if __name__ == '__main__':
    main()

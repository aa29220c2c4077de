"""The sample-recipe models at budget B, trained one per call and kept in the repository, so that the sample claims at
B can be decided in a later sitting than the one that trained them (a run directory does not outlive its sitting).

Rows (`farmer.analysis.B_MODELS`): the Fashion-MNIST chapter model `fashion-mnist-samples` (the paper's Gaussian noise
schedule, no split; seeds 0, 1 and 2), the paper's split `pixel-8` (d_I = 8; seeds 0 and 1; the sampling chapter at B
needs one split model) and the split with a redundant GMM per token `token-8` (ours; seeds 0 and 1), each trained for B_STEPS (the budget B of the likelihood benchmark, 30,000 steps) with an evaluation every 1,000
steps whose weights the run keeps (`farmer-train --keep-evals`). After each run, `bench/over_training.py` scores those
weights every 2,000 steps (unguided validation FID and class consistency, sampling seed 1) and the best weights once on
the test split (sampling seed 0) into `figures/samples-over-training.json`, the record of these runs; then the best
weights go to `data/budget-B/` in fp16 with their SHA-256 (`farmer.runs.export_pretrained`; about 5.8 MB a model),
where the analysis chapters find them at budget B (`FARMER_BUDGET=B`, `farmer.analysis.kept_model`). Nothing is trained twice: a model that `data/` ships
with the same config (the chapter model, seed 0) is copied there, and a run the record holds with the same config but
no kept weights (pixel-8 seed 0, trained before weights were kept) counts as done: its numbers come from the record.

    python bench/sample_models.py [--max-new-runs 1] [--data-root DIR]   # about two hours a run on 2 CPU cores
    python bench/sample_models.py --list                                   # kept, recorded only, or missing
    python bench/sample_models.py --preset digits-samples --rows no-split --steps 4 --eval-every 2 --every 2 --n 20 \\
        --runs /tmp/s --kept /tmp/s/kept --record /tmp/s/rec.json       # a smoke run (the tests)
"""

import argparse, json, os, shutil, subprocess, sys
from pathlib import Path
from farmer.analysis import B_MODELS, B_STEPS, KEPT, b_config
from farmer.train import ensure_run
from farmer.config import FarmerConfig
from farmer.runs import DATA_DIR, export_pretrained, model_manifest, pretrained_path, record_model
from farmer.runtime import config_diff, load_checkpoint

BENCH = Path(__file__).resolve().parent


def same_config(d: dict, cfg: FarmerConfig) -> bool:
    "Whether config dict `d` (written by any version: a field added since takes its default) is `cfg`."
    return not config_diff(FarmerConfig.from_dict(d).to_dict(), cfg.to_dict())


def model_configs(root: Path = DATA_DIR) -> dict[str, dict]:
    "{name: config dict} of the models in `root` (read once: each is a file of several MB)."
    return {n: load_checkpoint(pretrained_path(n, root))[1]['config'] for n in model_manifest(root)}


def shipped_as(cfg: FarmerConfig, configs: dict[str, dict]) -> str | None:
    "The name of a model in `configs` (`model_configs`) trained with exactly `cfg`, if there is one."
    return next((n for n, d in configs.items() if same_config(d, cfg)), None)


def status(name: str, cfg: FarmerConfig, kept: Path, record: dict) -> str | None:
    "'kept' (weights in `kept`), 'recorded' (numbers only, same config), or None."
    if name in model_manifest(kept):
        return 'kept'
    e = record.get(name, {})
    return 'recorded' if 'test' in e and same_config(e['config'], cfg) else None


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--rows', default=','.join(B_MODELS), help=f"comma-separated, of: {', '.join(B_MODELS)}")
    p.add_argument('--preset', default='fashion-mnist-samples', help="the chapter model's preset")
    p.add_argument('--steps', type=int, default=B_STEPS)
    p.add_argument('--eval-every', type=int, default=1000)
    p.add_argument('--every', type=int, default=2000, help='score the kept weights every this many steps')
    p.add_argument('--n', type=int, default=1000, help='samples per score')
    p.add_argument('--max-new-runs', type=int, help='stop after this many runs trained now (run again to go on)')
    p.add_argument('--runs', default='runs/samples-B')
    p.add_argument('--kept', default=str(KEPT), help='where the kept weights go')
    p.add_argument('--record', default='figures/samples-over-training.json')
    p.add_argument('--data-root', help='data root for Fashion-MNIST (default: $FARMER_DATA or ~/.cache/farmer)')
    p.add_argument('--list', action='store_true', help='say what is kept, recorded only, or missing; train nothing')
    a = p.parse_args()
    if bad := [r for r in a.rows.split(',') if r not in B_MODELS]:
        raise SystemExit(f"unknown row {bad[0]!r}: choose from {', '.join(B_MODELS)}")
    kept, record_path, new, shipped_configs = Path(a.kept), Path(a.record), 0, model_configs()
    kept.mkdir(parents=True, exist_ok=True)
    env = os.environ | ({'FARMER_DATA': a.data_root} if a.data_root else {})
    for row in a.rows.split(','):
        for seed in B_MODELS[row][1]:
            name, cfg = f'{row}-seed{seed}', b_config(row, seed, a.preset, a.steps, a.eval_every)
            record = json.loads(record_path.read_text()) if record_path.is_file() else {}
            st = status(name, cfg, kept, record)
            if st != 'kept' and (shipped := shipped_as(cfg, shipped_configs)):  # weights beat a record
                if a.list:
                    st = f'the shipped model {shipped!r} (copied to {kept} by the next call without --list)'
                else:
                    shutil.copyfile(pretrained_path(shipped), kept / f'model-{name}.safetensors')
                    record_model(kept, name, model_manifest()[shipped] | dict(about=f'the shipped model {shipped!r}'))
                    st = f'kept (a copy of the shipped model {shipped!r})'
            if a.list or st:
                print(f'{name:16s} {st or "missing"}', flush=True)
                continue
            if a.max_new_runs is not None and new >= a.max_new_runs:
                print(f'trained the {new} run(s) --max-new-runs allows; run the same command again to go on')
                return
            run = Path(a.runs) / name
            print(f'{name}: training {a.steps} steps into {run}', flush=True)
            s = ensure_run(
                cfg, run, progress=sys.stderr.isatty(), data_root=a.data_root, compile=a.steps >= 1000, keep_evals=True
            )
            new += 1
            print(f"{name}: test BPD {s['test_bpd']:.4f} (best step {s['best_step']}, {s['wall_s']:.0f} s)", flush=True)
            cmd = [sys.executable, str(BENCH / 'over_training.py'), '--runs', f'{name}={run}', '--every', str(a.every)]
            subprocess.run(cmd + ['--n', str(a.n), '--out', str(record_path), '--test'], check=True, env=env)
            about = f"`{a.preset}` {B_MODELS[row][0]}, {a.steps} steps, seed {seed}"
            e = export_pretrained(run, name, data_root=a.data_root, root=kept, about=about)
            print(f"{name}: kept in {kept} ({e['bytes'] / 1e6:.1f} MB, {e['dtype']})", flush=True)


if __name__ == '__main__':
    main()

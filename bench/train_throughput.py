"""Training throughput of this checkout against an older commit, side by side on one machine.

Each measurement is a `farmer-train` run in a fresh interpreter, with the code of one version on its path and its
evaluations switched off, for `--steps` steps; its throughput is the median of the per-step `images_per_s` that the run
itself logs (the first `--warmup` steps left out: they hold the compilation of the compiled variant), its peak memory
the process's peak RSS (VmHWM). Rounds interleave the variants so that machine noise hits them alike, and the table
gives the median over rounds. The old commit is checked out once into a git worktree under the system's temp folder.

    python bench/train_throughput.py [--against c9e1402] [--presets fashion-mnist,digits] [--rounds 3] [--steps 60]
    python bench/train_throughput.py --bpd-steps 400 --seeds 3     # and the loss-curve check: test BPD after 400 steps
    python bench/train_throughput.py --data                        # images decoded per second per worker (generated JPEGs)

Writes `figures/train-throughput.json`, which the throughput chapter tabulates.
"""

import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {'old': [], 'eager': [], 'compiled': ['--compile'], 'bf16': ['--precision', 'bf16']}  # flags of farmer-train
DRIVER = """
import json, sys
import farmer.train as T
if {no_eval}: T.heldout_bpd, T._finish = (lambda *a, **k: (0.0, 0.0)), (lambda *a, **k: {{}})
train_main = getattr(T, 'train_main', None)  # farmer-train's home: the training chapter now,
if train_main is None:
    try:  # the command-line chapter in older code,
        from farmer.cli import train_main
    except ImportError:  # the training chapter's `main` before that
        train_main = T.main
train_main(json.loads(sys.argv[1]))
print('VmHWM', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])
"""


def worktree(commit: str) -> Path:
    "A checkout of `commit` (made once) whose `farmer/` the old variant imports."
    path = Path(tempfile.gettempdir()) / f'farmer-{commit}'
    if not (path / 'farmer').is_dir():
        subprocess.run(
            ['git', '-C', str(ROOT), 'worktree', 'add', '--detach', '--force', str(path), commit],
            check=True,
            capture_output=True,
        )
    return path


def run(code_root: Path, flags: list[str], out: Path, no_eval: bool = True) -> dict:
    "One farmer-train run of the code under `code_root`: the metrics it logged, its peak RSS (MiB) and wall time."
    env = dict(os.environ, PYTHONPATH=str(code_root))
    t = time.time()
    r = subprocess.run(
        [
            sys.executable,
            '-c',
            DRIVER.format(no_eval=no_eval),
            json.dumps(flags + ['--out', str(out), '--no-progress']),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    if r.returncode:
        raise SystemExit(f'a run failed ({code_root}, {flags}):\n{r.stderr[-3000:]}')
    recs = [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines()]
    rss = next(int(l.split()[1]) for l in r.stdout.splitlines() if l.startswith('VmHWM')) / 1024
    return dict(recs=recs, rss=rss, wall=time.time() - t, stdout=r.stdout)


def throughput(a, old: Path, tmp: Path) -> dict:
    "Median images/s and peak RSS of every variant of every preset, interleaved over rounds."
    from farmer.config import preset

    res = {}
    for rnd in range(a.rounds):
        for p in a.presets.split(','):
            for v, extra in VARIANTS.items():
                if v == 'bf16' and p != 'fashion-mnist':
                    continue  # one row shows what bf16 autocast does on this CPU
                flags = ['--preset', p, '--steps', str(a.steps), '--eval-every', str(10 * a.steps)] + extra
                r = run(old if v == 'old' else ROOT, flags, tmp / f'{p}-{v}-{rnd}')
                ips = [x['images_per_s'] for x in r['recs'] if 'images_per_s' in x][a.warmup :]
                first = [x['images_per_s'] for x in r['recs'] if 'images_per_s' in x][0]
                d = res.setdefault(p, {}).setdefault(v, dict(images_per_s=[], peak_rss_mib=[], first_step_s=[]))
                d['images_per_s'].append(statistics.median(ips))
                d['peak_rss_mib'].append(r['rss'])
                d['first_step_s'].append(preset(p).recipe.batch_size / first)
                print(
                    f'round {rnd}: {p:14s} {v:9s} {statistics.median(ips):7.1f} images/s, peak RSS {r["rss"]:6.0f} MiB',
                    flush=True,
                )
    return {
        p: {
            v: dict(
                images_per_s=statistics.median(d['images_per_s']),
                peak_rss_mib=statistics.median(d['peak_rss_mib']),
                first_step_s=statistics.median(d['first_step_s']),
                rounds=d['images_per_s'],
            )
            for v, d in vs.items()
        }
        for p, vs in res.items()
    }


def bpd_check(a, old: Path, tmp: Path) -> dict:
    "Test BPD after `--bpd-steps` steps of the old and the new code, `--seeds` seeds each (evaluation only at the end)."
    from farmer.analysis import effect

    out = {}
    for p in a.presets.split(','):
        vals = {'old': [], 'new': []}
        for s in range(a.seeds):
            for v, root in (('old', old), ('new', ROOT)):
                flags = ['--preset', p, '--steps', str(a.bpd_steps), '--eval-every', str(a.bpd_steps), '--seed', str(s)]
                flags += ['--compile'] if v == 'new' else []
                d = tmp / f'bpd-{p}-{v}-{s}'
                run(root, flags, d, no_eval=False)
                summ = json.loads((d / 'summary.json').read_text())
                vals[v].append(summ['test_bpd'] if v == 'new' else summ['best_heldout_bpd'])  # both: the test split
                print(f'{p:14s} {v}, seed {s}: test BPD {vals[v][-1]:.4f}', flush=True)
        e = effect(vals['old'], vals['new'], better='lower')  # > 0: the new code reached a lower BPD
        out[p] = dict(
            old=vals['old'],
            new=vals['new'],
            steps=a.bpd_steps,
            new_minus_old=-e['effect'],
            ci=[-e['hi'], -e['lo']],
            within_seed_spread=bool(e['lo'] <= 0 <= e['hi']),
        )
    return out


def data_rows(tmp: Path) -> dict:
    "Images decoded per second by one worker, at 256x256 (ADM centre crop), on generated ImageNet-layout JPEGs."
    import torch
    from farmer.data import open_dataset
    from farmer.imagenet import fake_imagenet

    root = fake_imagenet(tmp / 'imagenet', per_class=64, classes=4)
    ds = open_dataset('imagenet256', 'train', root=str(root), image_size=256)
    t = time.perf_counter()
    ds.batch(torch.arange(len(ds)))
    dt = time.perf_counter() - t
    return dict(images=len(ds), images_per_s_per_worker=len(ds) / dt, size=256)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--against', default='c9e1402', help='the commit to compare with')
    p.add_argument('--presets', default='fashion-mnist,digits')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--steps', type=int, default=60)
    p.add_argument('--warmup', type=int, default=10)
    p.add_argument(
        '--bpd-steps', type=int, default=0, help='also train old and new this many steps and compare test BPD'
    )
    p.add_argument('--seeds', type=int, default=3)
    p.add_argument('--data', action='store_true', help='only the data-loading row')
    p.add_argument('--out', default=str(ROOT / 'figures' / 'train-throughput.json'))
    a = p.parse_args()
    out = Path(a.out)
    table = json.loads(out.read_text()) if out.is_file() else {}
    tmp = Path(tempfile.mkdtemp(prefix='farmer-bench-'))
    import torch
    from farmer.runtime import native_bf16

    table['machine'] = dict(
        threads=torch.get_num_threads(), native_bf16=native_bf16(torch.device('cpu')), cpu=_cpu_name()
    )
    if a.data:
        table['data'] = data_rows(tmp)
    else:
        old = worktree(a.against)
        table.update(against=a.against, steps=a.steps, rounds=a.rounds, throughput=throughput(a, old, tmp))
        if a.bpd_steps:
            table['bpd'] = bpd_check(a, old, tmp)
    out.write_text(json.dumps(table, indent=1))
    report(table)


def _cpu_name() -> str:
    try:
        return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration):
        return 'unknown'


def report(t: dict):
    m = t['machine']
    print(
        f"\n{m['cpu']}, {m['threads']} threads, native bf16: {m['native_bf16']}; against {t.get('against')}, median of {t.get('rounds')} rounds"
    )
    for p, vs in t.get('throughput', {}).items():
        base = vs['old']['images_per_s']
        for v, r in vs.items():
            print(
                f"{p:14s} {v:9s} {r['images_per_s']:7.1f} images/s  x{r['images_per_s'] / base:4.2f}  peak RSS {r['peak_rss_mib']:6.0f} MiB "
                f"(x{r['peak_rss_mib'] / vs['old']['peak_rss_mib']:4.2f})  first step {r['first_step_s']:5.1f} s"
            )
    for p, r in t.get('bpd', {}).items():
        print(
            f"{p}: test BPD after {r['steps']} steps: old {statistics.mean(r['old']):.4f} {r['old']}, new {statistics.mean(r['new']):.4f} {r['new']}; "
            f"new - old {r['new_minus_old']:+.4f}, 95% CI [{r['ci'][0]:+.4f}, {r['ci'][1]:+.4f}]"
        )
    if 'data' in t:
        print(
            f"data loading: {t['data']['images_per_s_per_worker']:.0f} images/s per worker at {t['data']['size']}x{t['data']['size']}"
        )


if __name__ == '__main__':
    main()

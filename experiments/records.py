"""What the experiments keep of a finished run: its curves and terms from `metrics.jsonl`, its per-image test BPDs."""

import json, statistics
from pathlib import Path
from safetensors.torch import load_file
from farmer.runtime import save_checkpoint


def learning_curve(metrics: Path, tail: float = 0.1) -> dict:
    """A run's validation BPD at each evaluation `[[step, bpd], ...]`, its training-log terms averaged over the last 10% of
    steps, and the same terms averaged over each interval between evaluations `[[step, bpd, nll_I, nll_R, logdet], ...]`."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    steps = [r for r in rows if 'loss' in r]
    last = steps[-max(1, int(tail * len(steps))) :]
    terms = ('bpd', 'nll_I', 'nll_R', 'logdet')
    ends = [r['step'] for r in rows if 'val_bpd' in r and r['step'] > 0]
    windows = [[r for r in steps if a < r['step'] <= b] for a, b in zip([0, *ends], ends)]
    return dict(
        curve=[[r['step'], r['val_bpd']] for r in rows if 'val_bpd' in r],
        train_tail={k: statistics.mean(r[k] for r in last) for k in terms},
        terms=[[w[-1]['step'], *(statistics.mean(r[k] for r in w) for k in terms)] for w in windows if w],
    )


def keep_images(path: Path, key: str, run: Path) -> None:
    """Add finished run `run`'s per-image test BPDs `[N]` (its `test_bpds.safetensors`) to the safetensors file `path`
    under `key`; their mean must be the run's recorded test BPD. A key already kept is left as it is."""
    kept = load_file(path) if path.is_file() else {}
    if key in kept:
        return
    v = load_file(run / 'test_bpds.safetensors')['bpd'].float()
    s = json.loads((run / 'summary.json').read_text())
    if abs(v.mean().item() - s['test_bpd']) > 1e-4:
        raise RuntimeError(f"{run}: its test images score {v.mean().item():.5f}, its summary {s['test_bpd']:.5f}")
    save_checkpoint(path, kept | {key: v}, dict(about='per-image test BPD of each run (experiments/)'))

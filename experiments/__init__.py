"""Part IV's experiments, beside the package: each declares its grid (the runs: configs x seeds x budget), what it keeps
of a finished run and the file it writes, and one runner trains what is missing.

    python -m experiments list                       # every experiment, its runs done / to train
    python -m experiments status NAME                # each run of NAME: recorded, on disk (cut short or finished), or missing
    python -m experiments run NAME [--max-new-runs N] [--data-root DIR] [--runs DIR]

The runner owns what every experiment used to do by hand:
- **the run record** `figures/<name>-runs.json` (committed): each finished run's config and what the experiment keeps of
  it. A recorded run with the same config is never trained again (a run directory does not outlive its sitting);
- **resume across invocations**: a run cut short (a kill, a sitting's end) is resumed from its checkpoint;
- **`--max-new-runs N`**: train at most N runs now, so a long grid spreads over sittings;
- **the output** `figures/<name>.json`, written from the record alone whenever it changes (atomically).

Why a folder beside `farmer/` and not inside it: the package is the method and its tools; how this repository measured
(grids, seeds, budgets, records) is not something a user of the model imports.
"""

from __future__ import annotations
import importlib, json, os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / 'figures'
NAMES = ('warm_start', 'k_sweep')  # the experiments' modules, each with an `EXPERIMENT`


@dataclass
class Run:
    "One run of a grid: its record key, its config, and how to train it (`train(run_dir, data_root)` -> run_dir)."

    key: str
    config: object  # a FarmerConfig
    train: Callable[[Path, str | None], Path]
    after: tuple[str, ...] = ()  # keys of runs whose directories this one starts from (trained first)


@dataclass
class Experiment:
    """A grid of runs, what to keep of each finished one (`keep(run_dir, run)` -> JSON-able dict) and how the output
    file is made from the whole record (`summarize(record)` -> JSON-able dict, None: the record alone)."""

    name: str
    about: str
    grid: Callable[[], list[Run]]
    keep: Callable[[Path, Run], dict]
    summarize: Callable[[dict], dict] | None = None
    output: str = ''
    figures: Path = FIGURES  # where the record and the output live

    @property
    def record_path(self) -> Path:
        return self.figures / f"{self.name.replace('_', '-')}-runs.json"

    @property
    def output_path(self) -> Path:
        return self.figures / (self.output or f"{self.name.replace('_', '-')}.json")


def load(name: str) -> Experiment:
    "The experiment declared by `experiments/<name>.py`; one clear error for an unknown name."
    if name not in NAMES:
        raise SystemExit(f"unknown experiment {name!r}; one of: {', '.join(NAMES)}")
    return importlib.import_module(f'experiments.{name}').EXPERIMENT


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json(path: Path, value) -> None:
    "Write JSON atomically: a kill leaves the old file or the new one, never half of one."
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(value, indent=1) + '\n')
    os.replace(tmp, path)


def recorded(exp: Experiment, run: Run, record: dict) -> bool:
    "Whether the record holds `run` with the config it would be trained with now."
    from farmer.config import FarmerConfig
    from farmer.runtime import config_diff

    r = record.get(run.key)  # (a field added since the run was recorded reads as its default)
    return bool(r) and not config_diff(FarmerConfig.from_dict(r['config']).to_dict(), run.config.to_dict())


def state(exp: Experiment, run: Run, record: dict, runs: Path) -> str:
    "'recorded', 'finished' (on disk, not yet recorded), 'cut short' (a checkpoint to resume) or 'missing'."
    if recorded(exp, run, record):
        return 'recorded'
    d = runs / run.key
    return 'finished' if (d / 'summary.json').is_file() else 'cut short' if d.is_dir() else 'missing'


def run_experiment(exp: Experiment, runs: Path, data_root: str | None, max_new_runs: int | None = None) -> dict:
    """Train the grid's missing runs in order (each after the runs it starts from), record each finished run, rewrite the
    output; stop after `max_new_runs` runs trained now. Returns the record."""
    record, grid = read_json(exp.record_path), {r.key: r for r in exp.grid()}
    trained = 0
    for run in grid.values():
        if recorded(exp, run, record):
            continue
        fresh = not (runs / run.key / 'summary.json').is_file()  # a run finished on disk is only recorded
        if fresh and max_new_runs is not None and trained >= max_new_runs:
            print(f'{exp.name}: stopping after {trained} new run(s) (--max-new-runs); run again to go on')
            break
        print(f'{exp.name}: {run.key} ({state(exp, run, record, runs)})', flush=True)
        d = run.train(runs / run.key, data_root)
        trained += fresh
        record = read_json(exp.record_path)  # re-read: another invocation may have added runs
        record[run.key] = dict(config=run.config.to_dict(), **exp.keep(d, run))
        write_json(exp.record_path, record)
        write_json(exp.output_path, exp.summarize(record) if exp.summarize else record)
    return record


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog='python -m experiments', description=__doc__.split('\n\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    sub.add_parser('list', help='every experiment and how many of its runs are recorded')
    s = sub.add_parser('status', help="each run of an experiment and its state")
    s.add_argument('name')
    r = sub.add_parser('run', help='train the missing runs of an experiment, record them, write its output')
    r.add_argument('name')
    r.add_argument('--max-new-runs', type=int, default=None, metavar='N')
    r.add_argument('--data-root', default=None, help='where Fashion-MNIST lives (default $FARMER_DATA)')
    for q in (s, r):
        q.add_argument('--runs', default=None, help='run directories (default runs/experiments/<name>)')
    a = p.parse_args(argv)
    if a.cmd == 'list':
        for n in NAMES:
            e = load(n)
            rec, grid = read_json(e.record_path), e.grid()
            done = sum(recorded(e, x, rec) for x in grid)
            print(f'{n:12s} {done:3d}/{len(grid)} runs recorded  {e.about}')
        return
    e = load(a.name)
    runs = Path(a.runs or ROOT / 'runs' / 'experiments' / e.name)
    if a.cmd == 'status':
        rec = read_json(e.record_path)
        for x in e.grid():
            print(f'{x.key:24s} {state(e, x, rec, runs)}')
        return
    if a.max_new_runs is not None and a.max_new_runs < 0:
        raise SystemExit(f'--max-new-runs must be >= 0, got {a.max_new_runs}')
    run_experiment(e, runs, a.data_root, a.max_new_runs)

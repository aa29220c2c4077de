import os, subprocess, sys
from pathlib import Path
import pytest, torch
from farmer.config import FarmerConfig
from farmer.runtime import read_jsonl

TRAIN = [sys.executable, '-m', 'farmer.train', '--no-progress']
# Bit-exact comparisons between processes need the same floating-point reduction order in both: a multi-threaded BLAS may
# change it with the machine's load (one such run differed from step 41 on, by 1e-5, right after another job ended), a
# single thread cannot.
ONE_THREAD = dict(os.environ, OMP_NUM_THREADS='1')
SMALL = [
    '--steps',
    '120',
    '--eval-every',
    '20',
    '--batch-size',
    '64',
    '--warmup',
    '10',
    '--af-width',
    '32',
    '--ar-width',
    '32',
    '--af-layers',
    '1',
]


@pytest.fixture
def tiny() -> FarmerConfig:
    "A tiny config: 4x4x1 images, patch 2 -> N=4 tokens of d=4; d_I=2."
    return FarmerConfig(
        image_size=4,
        patch=2,
        channels=1,
        num_classes=3,
        d_I=2,
        af_blocks=2,
        af_layers=1,
        af_width=16,
        af_heads=2,
        ar_layers=2,
        ar_width=16,
        ar_heads=2,
        K_I=3,
        K_R=2,
        cond_repeat=2,
    )


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def run_cli(entry: str, *args: str) -> tuple[int, list[str], str]:
    "Run console-script function `entry` ('module:function') in a fresh interpreter: (exit code, stderr lines, stdout)."
    mod, fn = entry.split(':')
    r = subprocess.run([sys.executable, '-c', f'from {mod} import {fn}; {fn}()', *args], capture_output=True, text=True)
    return r.returncode, r.stderr.strip().splitlines(), r.stdout


def metrics_of(run: Path) -> list[dict]:
    "A run's `metrics.jsonl` without the timings (which differ between two runs of the same steps)."
    recs = read_jsonl(run / 'metrics.jsonl')
    for r in recs:
        r.pop('images_per_s', None)
    return recs


@pytest.fixture(scope='session')
def small_run(tmp_path_factory) -> Path:
    "One uninterrupted `farmer-train` run of `SMALL` (120 steps, evaluations every 20), the reference of the resume tests."
    run = tmp_path_factory.mktemp('small') / 'full'
    subprocess.run(TRAIN + SMALL + ['--out', str(run)], check=True, capture_output=True, env=ONE_THREAD)
    return run

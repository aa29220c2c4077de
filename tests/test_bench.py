"The benchmarks' own smoke runs: the scripts a GPU user runs must work before anyone has a GPU."

import subprocess, sys
import pytest
from readme import ROOT


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_row():
    r = subprocess.run(
        [sys.executable, str(ROOT / 'bench' / 'gpu_check.py'), '--smoke', '--device', 'cpu'],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    for row in (
        'bf16 vs fp32',
        'AF inverse of imagenet256-1.1b',
        'imagenet64-556m',
        'imagenet256-1.9b',
        'fashion-mnist | training',
    ):
        assert row in out, (row, out)

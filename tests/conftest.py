import subprocess, sys
import pytest, torch
from farmer.config import FarmerConfig


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

import pytest, torch
from farmer.config import FarmerConfig

@pytest.fixture
def tiny() -> FarmerConfig:
    "A tiny config: 4x4x1 images, patch 2 -> N=4 tokens of d=4; d_I=2."
    return FarmerConfig(image_size=4, patch=2, channels=1, num_classes=3, d_I=2, af_blocks=2, af_layers=1,
                        af_width=16, af_heads=2, ar_layers=2, ar_width=16, ar_heads=2, K_I=3, K_R=2, cond_repeat=2)

@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)

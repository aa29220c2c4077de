"Run by test_train.py under `torchrun --nproc_per_node=2`: train, then save this rank's weights."
import json, sys, torch
from safetensors.torch import save_file
from farmer.config import FarmerConfig
from farmer.train import train

out, cfg = sys.argv[1], FarmerConfig.from_dict(json.loads(sys.argv[2]))
_, model = train(cfg, out, device='cpu', progress=False)
save_file(model.state_dict(), f'{out}/rank{torch.distributed.get_rank()}.safetensors')
torch.distributed.destroy_process_group()

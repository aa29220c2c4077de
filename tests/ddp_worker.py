"Run by test_train.py under `torchrun --nproc_per_node=2`: train, save this rank's weights, and (optionally) the images it read."

import json, os, sys, torch
from safetensors.torch import save_file
from farmer.config import FarmerConfig
from farmer.imagenet import FolderImages
from farmer.train import train

out, cfg = sys.argv[1], FarmerConfig.from_dict(json.loads(sys.argv[2]))
root = sys.argv[3] if len(sys.argv) > 3 else None
if root:  # record which source images this rank decodes
    read, image = [], FolderImages.image
    FolderImages.image = lambda self, j: read.append(str(self.base / self.files[j].decode())) or image(self, j)
_, model = train(cfg, out, device='cpu', data_root=root, progress=False, workers=0)
rank = torch.distributed.get_rank()
save_file(model.state_dict(), f'{out}/rank{rank}.safetensors')
if root:
    open(f'{out}/read{rank}.json', 'w').write(json.dumps(read))
torch.distributed.destroy_process_group()

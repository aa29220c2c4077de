"Run by the tests under `torchrun --nproc_per_node=2`: train (keyword arguments of `train` as JSON), save this rank's weights, and the images it read."

import json, sys, torch
from safetensors.torch import save_file
from farmer.config import FarmerConfig
from farmer.imagenet import FolderImages
from farmer.runtime import full_weights
from farmer.train import train

out, cfg = sys.argv[1], FarmerConfig.from_dict(json.loads(sys.argv[2]))
kw = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
if kw.get('data_root'):  # record which source images this rank decodes
    read, image = [], FolderImages.image
    FolderImages.image = lambda self, j: read.append(str(self.base / self.files[j].decode())) or image(self, j)
_, model = train(cfg, out, device='cpu', progress=False, workers=0, **kw)
rank = torch.distributed.get_rank()
save_file(full_weights(model), f'{out}/rank{rank}.safetensors')  # whole weights, also from a sharded model
if kw.get('data_root'):
    open(f'{out}/read{rank}.json', 'w').write(json.dumps(read))
torch.distributed.destroy_process_group()

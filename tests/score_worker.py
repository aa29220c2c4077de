"Run by the tests under `torchrun --nproc_per_node=2`: score a fixed untrained model's held-out BPD per image across the ranks (gloo) and save what each rank gets."

import sys, torch
from safetensors.torch import save_file
from farmer.config import preset
from farmer.model import Farmer
from farmer.runs import heldout_bpds, run_splits
from farmer.runtime import init_distributed

out, images, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = init_distributed(torch.device('cpu'))
torch.manual_seed(0)
model = Farmer(preset('digits-small'))
val = run_splits(model.cfg)['val'].subset(range(images))
save_file(dict(bpd=heldout_bpds(model, val, batch=batch, workers=0, d=d)), f'{out}/rank{d.rank}.safetensors')
torch.distributed.destroy_process_group()

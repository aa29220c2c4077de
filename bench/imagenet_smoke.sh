#!/usr/bin/env bash
# The three paper presets start training on ImageNet-layout data, on a CPU: generated JPEGs in the ImageNet-1k layout
# (farmer.imagenet.fake_imagenet: 3 classes x 10 images of 300-700 px) and tiny files in the official downsampled
# ImageNet-64 npz layout (fake_imagenet64), each preset at its full image size and patch with its Transformers shrunk by
# flags, two steps each. With real data, drop the shrinking flags and point --data-root at it (README, "Paper scale").
#
#   bash bench/imagenet_smoke.sh [DIR]     # DIR: where data and runs go (default: a new temporary folder)
set -euo pipefail
D=${1:-$(mktemp -d)}
python -c "
from pathlib import Path
from farmer.imagenet import fake_imagenet, fake_imagenet64
fake_imagenet(Path('$D/data/in256'), per_class=10)
fake_imagenet64(Path('$D/data/in64'))
print('generated in $D/data: an ImageNet-layout folder and downsampled-ImageNet-64 npz batches')"
SMALL=(--af-blocks 2 --af-layers 1 --af-width 64 --af-heads 2 --ar-layers 1 --ar-width 64 --ar-heads 2
       --batch-size 4 --steps 2 --eval-every 2 --val-images 4 --workers 2 --no-progress)
for p in imagenet256-1.1b imagenet256-1.9b imagenet64-556m; do
  root=$D/data/in256; [ "$p" = imagenet64-556m ] && root=$D/data/in64
  echo "\$ farmer-train --preset $p --data-root $root ${SMALL[*]} --out $D/runs/$p"
  farmer-train --preset "$p" --data-root "$root" "${SMALL[@]}" --out "$D/runs/$p"
done

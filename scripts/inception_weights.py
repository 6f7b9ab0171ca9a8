#!/usr/bin/env python3
"""Converts pytorch-fid's FID Inception-v3 weights to the safetensors file `saddle eval
--inception` reads (the same tensors under the same names; batch norm's num_batches_tracked
counters dropped).

  curl -LO https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
  python3 scripts/inception_weights.py pt_inception-2015-12-05-6726825d.pth inception-fid.safetensors

Needs torch and safetensors (`pip install torch safetensors`, or benches/setup-torch.sh's venv).
"""

import sys

import torch
from safetensors.torch import save_file


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, target = sys.argv[1], sys.argv[2]
    state = torch.load(source, map_location="cpu", weights_only=True)
    tensors = {
        name: t.detach().to(torch.float32).contiguous()
        for name, t in state.items()
        if not name.endswith("num_batches_tracked")
    }
    if "fc.weight" not in tensors or tuple(tensors["fc.weight"].shape) != (1008, 2048):
        sys.exit(f"{source}: not pytorch-fid's FID Inception weights (no fc.weight [1008, 2048])")
    save_file(tensors, target)
    print(f"{target}: {len(tensors)} tensors, "
          f"{sum(t.numel() for t in tensors.values()):,} values")


if __name__ == "__main__":
    main()

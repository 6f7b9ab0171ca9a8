#!/usr/bin/env python3
"""The Inception-v3 feature pass in PyTorch, timed, and the inputs for timing saddle's:

  benches/.venv/bin/python benches/inception_speed.py OUT_DIR [THREADS]
  saddle eval fid --inception OUT_DIR/inception-formula.safetensors OUT_DIR/speed-a.npy OUT_DIR/speed-b.npy

Writes the full-width FID network with scripts/inception_fixture.py's formula weights as
safetensors (about 95 MB) and two sets of 50 random 1x28x28 images, then times PyTorch on the
first set (3 runs, batches of 25, as saddle's batches). saddle's command scores both sets (2 x
50 images), so compare per image.
"""

import os
import sys
import time

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from inception_fixture import FidInception, formula_state  # noqa: E402


def main():
    out = sys.argv[1]
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    os.makedirs(out, exist_ok=True)
    net = FidInception(1).eval()
    net.load_state_dict(formula_state(net.state_dict()), strict=False)
    state = {k: v.contiguous() for k, v in net.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    save_file(state, os.path.join(out, "inception-formula.safetensors"))
    rng = np.random.default_rng(0)
    x = rng.random((50, 1, 28, 28), dtype=np.float32)
    np.save(os.path.join(out, "speed-a.npy"), x)
    np.save(os.path.join(out, "speed-b.npy"), rng.random((50, 1, 28, 28), dtype=np.float32))
    images = torch.from_numpy(x).expand(50, 3, 28, 28).contiguous()
    times = []
    with torch.no_grad():
        for _ in range(3):
            start = time.time()
            for i in range(0, 50, 25):
                net(images[i:i + 25])
            times.append(time.time() - start)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, 50 images: "
          f"{', '.join(f'{t:.2f}' for t in times)} s")


if __name__ == "__main__":
    main()

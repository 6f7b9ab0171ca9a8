"""Diagnostic: the GAN 2014 MNIST recipe of gan/src/models/gan2014.rs transcribed to PyTorch, to
tell a recipe problem from an engine bug. Same architecture, init, dropout, SGD schedule, D
max-norm, batch 100, k = 1. Prints D's mean output on real and generated batches every 500 steps.

    TORCH_PYTHON=benches/.venv/bin/python  # or any python with torch + numpy
    $TORCH_PYTHON benches/gan2014_torch_check.py ../shared/datasets/mnist 3000 [lr]
"""
import gzip, sys
import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
torch.set_num_threads(2)
folder, steps = sys.argv[1], int(sys.argv[2])
lr0 = float(sys.argv[3]) if len(sys.argv) > 3 else 0.1
with gzip.open(f"{folder}/train-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 784).astype(np.float32) / 255.0
x = torch.from_numpy(x)


def uniform_linear(i, o, r):
    lin = nn.Linear(i, o)
    nn.init.uniform_(lin.weight, -r, r)
    nn.init.zeros_(lin.bias)
    return lin


class Maxout(nn.Module):
    def __init__(self, i, units, pieces, r):
        super().__init__()
        self.lin, self.units, self.pieces = uniform_linear(i, units * pieces, r), units, pieces

    def forward(self, h):
        return self.lin(h).view(-1, self.units, self.pieces).max(-1).values


g = nn.Sequential(uniform_linear(100, 1200, 0.05), nn.ReLU(), uniform_linear(1200, 1200, 0.05),
                  nn.ReLU(), uniform_linear(1200, 784, 0.05))
p = x.mean(0).clamp(1e-4, 1 - 1e-4)
with torch.no_grad():
    g[4].bias.copy_(torch.log(p / (1 - p)))
d = nn.Sequential(nn.Dropout(0.2), Maxout(784, 240, 5, 0.005), nn.Dropout(0.5),
                  Maxout(240, 240, 5, 0.005), nn.Dropout(0.5), uniform_linear(240, 1, 0.005))
opt_g = torch.optim.SGD(g.parameters(), lr=0.1, momentum=0.5)
opt_d = torch.optim.SGD(d.parameters(), lr=0.1, momentum=0.5)
bce = nn.BCEWithLogitsLoss()
ones, zeros = torch.ones(100, 1), torch.zeros(100, 1)
for step in range(steps):
    lr = max(lr0 / 1.000004 ** step, 1e-6)
    mom = 0.5 + 0.2 * min(max(step - 500, 0) / (250 * 500 - 500), 1.0)
    for opt in (opt_g, opt_d):
        for grp in opt.param_groups:
            grp["lr"], grp["momentum"] = lr, mom
    real = x[torch.randint(0, len(x), (100,))]
    fake = torch.sigmoid(g(torch.rand(100, 100) * 2 - 1))
    lr_, lf_ = d(real), d(fake.detach())
    loss_d = 0.5 * (bce(lr_, ones) + bce(lf_, zeros))
    opt_d.zero_grad(); loss_d.backward(); opt_d.step()
    with torch.no_grad():
        for m in (d[1].lin, d[3].lin, d[5]):
            n = m.weight.norm(dim=1, keepdim=True)
            m.weight.mul_((1.9365 / n).clamp(max=1.0))
    fake = torch.sigmoid(g(torch.rand(100, 100) * 2 - 1))
    loss_g = bce(d(fake), ones)
    opt_g.zero_grad(); loss_g.backward(); opt_g.step()
    if step % 500 == 0 or step == steps - 1:
        print(f"step {step}: D(x) {torch.sigmoid(lr_).mean():.4f}  D(G(z)) {torch.sigmoid(lf_).mean():.4f}  "
              f"loss D {loss_d:.4f}  loss G {loss_g:.4f}", flush=True)

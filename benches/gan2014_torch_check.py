"""Diagnostic: the GAN 2014 MNIST model of gan/src/models/gan2014.rs transcribed to PyTorch, to
tell a recipe problem from an engine bug. Same architecture, init, dropout, SGD schedule, batch
100, first 50,000 training images. `sim`: the reference code's simultaneous updates (both
players' gradients from one pass, same dropout masks); `alt`: Algorithm 1's alternating order.
Prints D's mean output on real and generated batches every 1,000 steps.

    benches/.venv/bin/python benches/gan2014_torch_check.py ../shared/datasets/mnist 1001 sim|alt gauss|unif
"""
import gzip, sys
import numpy as np
import torch
from torch import nn
torch.manual_seed(0); torch.set_num_threads(1)
folder, steps = sys.argv[1], int(sys.argv[2])
mode = sys.argv[3]  # "sim" or "alt"
noise = sys.argv[4]  # gauss or unif
with gzip.open(f"{folder}/train-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 784).astype(np.float32) / 255.0
x = torch.from_numpy(x[:50000])
def ul(i, o, r):
    l = nn.Linear(i, o); nn.init.uniform_(l.weight, -r, r); nn.init.zeros_(l.bias); return l
class Maxout(nn.Module):
    def __init__(s, i, u, p, r):
        super().__init__(); s.lin, s.u, s.p = ul(i, u*p, r), u, p
    def forward(s, h): return s.lin(h).view(-1, s.u, s.p).max(-1).values
g = nn.Sequential(ul(100,1200,.05), nn.ReLU(), ul(1200,1200,.05), nn.ReLU(), ul(1200,784,.05))
p = x.mean(0).clamp(1e-4, 1-1e-4)
with torch.no_grad(): g[4].bias.copy_(torch.log(p/(1-p)))
d = nn.Sequential(nn.Dropout(0.2), Maxout(784,240,5,.005), nn.Dropout(0.5), Maxout(240,240,5,.005), nn.Dropout(0.5), ul(240,1,.005))
opt_g = torch.optim.SGD(g.parameters(), lr=0.1, momentum=0.5)
opt_d = torch.optim.SGD(d.parameters(), lr=0.1, momentum=0.5)
bce = nn.BCEWithLogitsLoss()
ones, zeros = torch.ones(100,1), torch.zeros(100,1)
def z(): return torch.randn(100,100) if noise == "gauss" else torch.rand(100,100)*2*3**.5-3**.5
perm = torch.randperm(50000)
for step in range(steps):
    lr = max(0.1/1.000004**step, 1e-6)
    mom = 0.5 + 0.2*min(max(step-500,0)/(250*500-500), 1.0)
    for o in (opt_g, opt_d):
        for gr in o.param_groups: gr["lr"], gr["momentum"] = lr, mom
    i = step % 500
    if i == 0: perm = torch.randperm(50000)
    real = x[perm[i*100:(i+1)*100]]
    if mode == "sim":
        fake = torch.sigmoid(g(z()))
        lr_, lf_ = d(real), d(fake)
        loss_d = 0.5*(bce(lr_, ones) + bce(lf_, zeros))
        loss_g = bce(lf_, ones)
        dg = torch.autograd.grad(loss_d, list(d.parameters()), retain_graph=True)
        gg = torch.autograd.grad(loss_g, list(g.parameters()))
        for prm, gr in zip(d.parameters(), dg): prm.grad = gr
        for prm, gr in zip(g.parameters(), gg): prm.grad = gr
        opt_d.step(); opt_g.step()
    else:
        fake = torch.sigmoid(g(z()))
        lr_, lf_ = d(real), d(fake.detach())
        loss_d = 0.5*(bce(lr_, ones)+bce(lf_, zeros))
        opt_d.zero_grad(); loss_d.backward(); opt_d.step()
        loss_g = bce(d(torch.sigmoid(g(z()))), ones)
        opt_g.zero_grad(); loss_g.backward(); opt_g.step()
    if step % 1000 == 0 or step == steps-1:
        print(f"step {step}: D(x) {torch.sigmoid(lr_).mean():.4f} D(G(z)) {torch.sigmoid(lf_).mean():.4f} loss D {loss_d:.4f} loss G {loss_g:.4f}", flush=True)
g.eval()
with torch.no_grad():
    print("mean pixel of 10,000 samples:", float(torch.sigmoid(g(torch.cat([z() for _ in range(100)]))).mean()))

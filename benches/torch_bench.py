#!/usr/bin/env python3
"""PyTorch side of saddle's benchmark tables.

Times the same cases as `saddle bench gemm|conv` (same names, same work) and prints JSON lines
{"name", "median_ms", "gflops"}. Median of --runs timed runs after one warm-up.

    python benches/torch_bench.py gemm --threads 2
    python benches/torch_bench.py conv --threads 2
    python benches/torch_bench.py train --threads 2 [--only gan2014]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def median_ms(fn, runs):
    fn()
    times = []
    for _ in range(max(runs, 1)):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def gemm_cases(sizes):
    for n in sizes:
        a = torch.randn(n, n)
        b = torch.randn(n, n)
        yield f"sgemm_{n}", (lambda a=a, b=b: torch.mm(a, b)), 2.0 * n**3


# (kind, batch, c_in, h, c_out): k4 s2 p1, the DCGAN layers.
DCGAN_LAYERS = [
    ("conv2d", 64, 3, 32, 64),
    ("conv2d", 64, 64, 16, 128),
    ("conv2d", 64, 128, 8, 256),
    ("convT", 64, 256, 4, 128),
    ("convT", 64, 128, 8, 64),
    ("convT", 64, 64, 16, 3),
]


def conv_cases(layers):
    for kind, n, cin, h, cout in layers:
        x = torch.randn(n, cin, h, h, requires_grad=True)
        if kind == "conv2d":
            w = torch.randn(cout, cin, 4, 4, requires_grad=True)
            op = lambda x, w: F.conv2d(x, w, stride=2, padding=1)
            oh = h // 2
            macs = n * cout * oh * oh * cin * 16
        else:
            w = torch.randn(cin, cout, 4, 4, requires_grad=True)
            op = lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1)
            macs = n * cin * h * h * cout * 16
        gy = torch.randn(op(x, w).shape)

        def step(x=x, w=w, op=op, gy=gy):
            x.grad = None
            w.grad = None
            op(x, w).backward(gy)

        # forward + backward-data + backward-weight: three products of equal size
        yield f"{kind}_{cin}x{h}x{h}_to_{cout}", step, 3 * 2.0 * macs


def dcgan(nz, ngf, ndf, nc, size):
    """PyTorch's reference DCGAN (examples/dcgan) at 32 or 64 pixels, D ending in a logit."""
    nn = torch.nn
    mults = [8, 4, 2, 1] if size == 64 else [4, 2, 1]
    g, cin = [], nz
    for i, m in enumerate(mults):
        g += [nn.ConvTranspose2d(cin, ngf * m, 4, 1 if i == 0 else 2, 0 if i == 0 else 1, bias=False),
              nn.BatchNorm2d(ngf * m), nn.ReLU(True)]
        cin = ngf * m
    g += [nn.ConvTranspose2d(cin, nc, 4, 2, 1, bias=False), nn.Tanh()]
    d, cin = [], nc
    for i, m in enumerate(reversed(mults)):
        d += [nn.Conv2d(cin, ndf * m, 4, 2, 1, bias=False)]
        if i > 0:
            d += [nn.BatchNorm2d(ndf * m)]
        d += [nn.LeakyReLU(0.2, inplace=True)]
        cin = ndf * m
    d += [nn.Conv2d(cin, 1, 4, 1, 0, bias=False)]
    return nn.Sequential(*g), nn.Sequential(*d)


def train_cases(batch):
    for name, (nc, size) in [("train_dcgan32", (1, 32)), ("train_dcgan64", (3, 64))]:
        g, d = dcgan(100, 64, 64, nc, size)
        opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        bce = torch.nn.BCEWithLogitsLoss()
        real = torch.rand(batch, nc, size, size) * 2 - 1
        ones, zeros = torch.ones(batch, 1, 1, 1), torch.zeros(batch, 1, 1, 1)

        def step(g=g, d=d, opt_g=opt_g, opt_d=opt_d, real=real):
            fake = g(torch.randn(batch, 100, 1, 1))
            d.zero_grad()
            loss_d = bce(d(real), ones) + bce(d(fake.detach()), zeros)
            loss_d.backward()
            opt_d.step()
            g.zero_grad()
            loss_g = bce(d(fake), ones)
            loss_g.backward()
            opt_g.step()
            return loss_d.item(), loss_g.item()

        yield f"{name}_b{batch}", step, 0.0
    yield gan2014_case()


class MaxoutD(torch.nn.Module):
    """The 2014 GAN's MNIST discriminator: dropout 0.2 on the input, two maxout layers (240 units
    x 5 consecutive pieces) each followed by dropout 0.5, a linear unit (logit)."""

    def __init__(self, units=240, pieces=5):
        super().__init__()
        nn = torch.nn
        self.units, self.pieces = units, pieces
        self.h0 = nn.Linear(784, units * pieces)
        self.h1 = nn.Linear(units, units * pieces)
        self.y = nn.Linear(units, 1)

    def forward(self, x):
        x = F.dropout(x, 0.2, self.training)
        x = self.h0(x).view(-1, self.units, self.pieces).max(-1).values
        x = F.dropout(x, 0.5, self.training)
        x = self.h1(x).view(-1, self.units, self.pieces).max(-1).values
        x = F.dropout(x, 0.5, self.training)
        return self.y(x)


def gan2014_case():
    """One step of gan/src/models/gan2014.rs: a D step on 100 real + 100 generated images (G
    under no_grad), then a G step on 100 fresh ones with D's weights frozen; SGD lr 0.1,
    momentum 0.5; the reference's uniform initialisation."""
    nn = torch.nn
    g = nn.Sequential(nn.Linear(100, 1200), nn.ReLU(), nn.Linear(1200, 1200), nn.ReLU(),
                      nn.Linear(1200, 784), nn.Sigmoid())
    d = MaxoutD()
    with torch.no_grad():
        for net, r in ((g, 0.05), (d, 0.005)):
            for name, p in net.named_parameters():
                p.uniform_(-r, r) if name.endswith("weight") else p.zero_()
    opt_g = torch.optim.SGD(g.parameters(), lr=0.1, momentum=0.5)
    opt_d = torch.optim.SGD(d.parameters(), lr=0.1, momentum=0.5)
    bce = torch.nn.BCEWithLogitsLoss()
    real = torch.rand(100, 784)
    ones, zeros = torch.ones(100, 1), torch.zeros(100, 1)
    noise = lambda: torch.rand(100, 100) * 2 - 1

    def step():
        with torch.no_grad():
            fake = g(noise())
        opt_d.zero_grad()
        loss_d = 0.5 * (bce(d(real), ones) + bce(d(fake), zeros))
        loss_d.backward()
        opt_d.step()
        for p in d.parameters():
            p.requires_grad_(False)
        opt_g.zero_grad()
        loss_g = bce(d(g(noise())), ones)
        loss_g.backward()
        opt_g.step()
        for p in d.parameters():
            p.requires_grad_(True)
        return loss_d.item(), loss_g.item()

    return "train_gan2014_b100", step, 0.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("suite", choices=["gemm", "conv", "train"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--sizes", default="256,512,1024,2048")
    p.add_argument("--only", default=None, help="only the train cases whose name contains this")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.suite == "gemm":
        cases = gemm_cases([int(s) for s in args.sizes.split(",")])
    elif args.suite == "conv":
        cases = conv_cases(DCGAN_LAYERS)
    else:
        cases = train_cases(args.batch)
    for name, fn, flops in cases:
        if args.only and args.suite == "train" and args.only not in name:
            continue
        ms = median_ms(fn, args.runs)
        print(json.dumps({"name": name, "median_ms": ms, "gflops": flops / ms / 1e6 if flops else 0.0}), flush=True)


if __name__ == "__main__":
    main()

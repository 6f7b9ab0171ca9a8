#!/usr/bin/env python3
"""PyTorch side of saddle's benchmark tables.

Times the same cases as `saddle bench gemm|conv|train` (same names, same work) and prints JSON
lines {"name", "median_ms", "gflops"} (and "params", the trained parameters, for model rows that
have them: benches/compare.sh checks both sides agree). Median of --runs timed runs after one
warm-up.

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


def dcgan(nz, ngf, ndf, nc, size, d_batch_norm=True):
    """PyTorch's reference DCGAN (examples/dcgan) at 32 or 64 pixels, D ending in a logit (a
    critic without batch norm for WGAN-GP when d_batch_norm is False)."""
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
        if i > 0 and d_batch_norm:
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
    yield wgan_gp_case(batch)
    yield gan2014_case()
    yield biggan_case(batch)


def wgan_gp_case(batch):
    """One WGAN-GP critic update (gradient penalty weight 10 through autograd.grad with
    create_graph) and one G update, the 32x32 DCGAN without batch norm in the critic, Adam 1e-4
    with betas (0, 0.9): `saddle bench train`'s train_wgangp32 with n_critic 1."""
    g, d = dcgan(100, 64, 64, 1, 32, d_batch_norm=False)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.0, 0.9))
    real = torch.rand(batch, 1, 32, 32) * 2 - 1

    def step():
        fake = g(torch.randn(batch, 100, 1, 1))
        d.zero_grad()
        eps = torch.rand(batch, 1, 1, 1)
        mixed = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
        grad, = torch.autograd.grad(d(mixed).sum(), mixed, create_graph=True)
        gp = ((grad.flatten(1).square().sum(1) + 1e-12).sqrt() - 1).square().mean()
        loss_d = d(fake.detach()).mean() - d(real).mean() + 10 * gp
        loss_d.backward()
        opt_d.step()
        g.zero_grad()
        loss_g = -d(fake).mean()
        loss_g.backward()
        opt_g.step()
        return loss_d.item(), loss_g.item()

    return f"train_wgangp32_b{batch}", step, 0.0


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


def sn(module):
    """Spectral norm with one power iteration per training forward (saddle's SpectralNorm)."""
    return torch.nn.utils.spectral_norm(module, n_power_iterations=1, eps=1e-12)


def sn_conv(cin, cout, k):
    return sn(torch.nn.Conv2d(cin, cout, k, padding=k // 2))


class CondBN(torch.nn.Module):
    """Batch norm without affine, then a per-sample gain `1 + gain(c)` and bias `bias(c)` from
    spectrally normalised linear maps without bias (nn/src/layers/cond_batch_norm.rs)."""

    def __init__(self, channels, cond_dim):
        super().__init__()
        self.bn = torch.nn.BatchNorm2d(channels, affine=False)
        self.gain = sn(torch.nn.Linear(cond_dim, channels, bias=False))
        self.bias = sn(torch.nn.Linear(cond_dim, channels, bias=False))

    def forward(self, x, c):
        return self.bn(x) * (1 + self.gain(c))[:, :, None, None] + self.bias(c)[:, :, None, None]


class GBlock(torch.nn.Module):
    """ResBlockUp: conv2(relu(bn2(conv1(up(relu(bn1(x))))))) + up(shortcut(x)); the 1x1 shortcut
    before the upsampling as saddle (the same values at a quarter of the cost)."""

    def __init__(self, cin, cout, cond_dim):
        super().__init__()
        self.bn1, self.conv1 = CondBN(cin, cond_dim), sn_conv(cin, cout, 3)
        self.bn2, self.conv2 = CondBN(cout, cond_dim), sn_conv(cout, cout, 3)
        self.shortcut = sn_conv(cin, cout, 1)

    def forward(self, x, c):
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")
        h = self.conv1(up(F.relu(self.bn1(x, c))))
        h = self.conv2(F.relu(self.bn2(h, c)))
        return h + up(self.shortcut(x))


class DBlock(torch.nn.Module):
    """ResBlockDown: avgpool(conv2(relu(conv1(relu?(x))))) + shortcut?(avgpool(x)); the shortcut
    pools before its 1x1 convolution as saddle."""

    def __init__(self, cin, cout, downsample, preactivation):
        super().__init__()
        self.conv1, self.conv2 = sn_conv(cin, cout, 3), sn_conv(cout, cout, 3)
        self.shortcut = sn_conv(cin, cout, 1) if cin != cout else None
        self.downsample, self.preactivation = downsample, preactivation

    def forward(self, x):
        pool = (lambda t: F.avg_pool2d(t, 2)) if self.downsample else (lambda t: t)
        h = F.relu(x) if self.preactivation else x
        h = pool(self.conv2(F.relu(self.conv1(h))))
        skip = pool(x)
        return h + (self.shortcut(skip) if self.shortcut is not None else skip)


class BigGanG(torch.nn.Module):
    """gan/src/models/biggan.rs's G at 32x32: hierarchical z (one chunk for the 4x4 seed, one per
    block, each concatenated with the shared class embedding to condition the block's norms),
    three up-blocks of width 4ch, batch norm (affine), ReLU, 3x3 conv, tanh."""

    def __init__(self, ch, z_dim, shared_dim, classes, channels):
        super().__init__()
        width, blocks = 4 * ch, 3
        self.chunk = z_dim // (blocks + 1)
        self.width = width
        self.shared = torch.nn.Embedding(classes, shared_dim)
        self.fc = sn(torch.nn.Linear(self.chunk, 16 * width))
        cond = self.chunk + shared_dim
        self.blocks = torch.nn.ModuleList(GBlock(width, width, cond) for _ in range(blocks))
        self.final_bn = torch.nn.BatchNorm2d(width)
        self.final_conv = sn_conv(width, channels, 3)

    def forward(self, z, y):
        chunks = z.split(self.chunk, 1)
        e = self.shared(y)
        h = self.fc(chunks[0]).view(z.shape[0], self.width, 4, 4)
        for block, chunk in zip(self.blocks, chunks[1:]):
            h = block(h, torch.cat([chunk, e], 1))
        return torch.tanh(self.final_conv(F.relu(self.final_bn(h))))


class BigGanD(torch.nn.Module):
    """gan/src/models/biggan.rs's D at 32x32: four down-blocks of width 2ch (the first without the
    leading ReLU, the last without pooling), ReLU, global sum pooling, `linear(h) + embed(y).h`."""

    def __init__(self, ch, classes, channels):
        super().__init__()
        width = 2 * ch
        ins = [channels, width, width, width]
        self.blocks = torch.nn.Sequential(
            *(DBlock(cin, width, i != 3, i != 0) for i, cin in enumerate(ins)))
        self.linear = sn(torch.nn.Linear(width, 1))
        self.embed = sn(torch.nn.Embedding(classes, width))

    def forward(self, x, y):
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.linear(h).view(-1) + (self.embed(y) * h).sum(1)


def biggan_case(batch, ch=16, z_dim=80, shared_dim=64, classes=10, channels=1, d_steps=2):
    """One step of gan/src/models/biggan_trainer.rs with `saddle train biggan`'s defaults
    (src/train.rs BigganSpec; digits: 1 channel, 10 classes): `d_steps` D updates on parts of
    `batch` real images (G's fakes under no_grad), then a G update on a fresh part with D's
    weights frozen; hinge losses; Adam beta1 0, beta2 0.999, lr G 1e-4 / D 5e-4; then the
    average of G's weights (parameters averaged from step 1000 with decay 0.999, copied before;
    buffers copied). Orthogonal init as saddle."""
    g = BigGanG(ch, z_dim, shared_dim, classes, channels)
    d = BigGanD(ch, classes, channels)
    g_ema = BigGanG(ch, z_dim, shared_dim, classes, channels)
    with torch.no_grad():
        for net in (g, d):
            for name, p in net.named_parameters():
                torch.nn.init.orthogonal_(p) if p.dim() >= 2 else p.zero_()
    g_ema.load_state_dict(g.state_dict())
    g_ema.eval()
    params = sum(p.numel() for net in (g, d) for p in net.parameters())
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.0, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=5e-4, betas=(0.0, 0.999))
    part = batch // d_steps
    real = torch.rand(batch, channels, 32, 32) * 2 - 1
    labels = torch.randint(classes, (batch,))
    ema_pairs = list(zip(g_ema.parameters(), g.parameters()))
    ema_buffers = list(zip(g_ema.buffers(), g.buffers()))
    steps = [0]

    def draw():
        return torch.randn(part, z_dim), torch.randint(classes, (part,))

    def step():
        draws = [draw() for _ in range(d_steps + 1)]
        for i, (z, yf) in enumerate(draws[:d_steps]):
            x, y = real[i * part:(i + 1) * part], labels[i * part:(i + 1) * part]
            with torch.no_grad():
                fake = g(z, yf)
            opt_d.zero_grad()
            real_logits, fake_logits = d(x, y), d(fake, yf)
            loss_d = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
            loss_d.backward()
            opt_d.step()
        z, yf = draws[d_steps]
        for p in d.parameters():
            p.requires_grad_(False)
        opt_g.zero_grad()
        loss_g = -d(g(z, yf), yf).mean()
        loss_g.backward()
        opt_g.step()
        for p in d.parameters():
            p.requires_grad_(True)
        steps[0] += 1
        with torch.no_grad():
            for shadow, live in ema_pairs:
                if steps[0] >= 1000:
                    shadow.mul_(0.999).add_(live, alpha=0.001)
                else:
                    shadow.copy_(live)
            for shadow, live in ema_buffers:
                shadow.copy_(live)
        return (loss_d.item(), real_logits.detach().mean().item(),
                fake_logits.detach().mean().item(), loss_g.item())

    return f"train_biggan32_b{batch}", step, 0.0, params


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
    for name, fn, flops, *params in cases:
        if args.only and args.suite == "train" and args.only not in name:
            continue
        ms = median_ms(fn, args.runs)
        row = {"name": name, "median_ms": ms, "gflops": flops / ms / 1e6 if flops else 0.0}
        if params:
            row["params"] = params[0]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

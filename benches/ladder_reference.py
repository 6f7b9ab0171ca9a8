"""Independent PyTorch reference of the ladder network in gan/src/models/ladder.rs.

Written from the paper (Rasmus et al. 2015), not from the Rust code, to check it two ways:

  python benches/ladder_reference.py train --data /work/shared/datasets/mnist \
      --steps 500 --denoise-weights 0,0,0,0,0,0,0
      Trains the same network, optimiser and schedule as `saddle train ladder` (labelled and
      unlabelled halves normalised separately; `--joint` for one batch) on 10 labels per
      class (a torch-seeded split) and prints the clean encoder's test error, to tell a defect
      in the Rust port from what the setting itself gives.

  python benches/ladder_reference.py values
      Prints the clean logits, the per-layer costs and a few gradients of a tiny ladder
      (4-3-2, fixed weights, noise passed in) whose literals gan/tests/ladder.rs reproduces
      (`ladder_matches_pytorch_reference`).

Use the project's venv interpreter: /work/main/benches/.venv/bin/python.
"""

import argparse
import gzip
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-5


def bn(x):
    """Batch normalisation without affine parameters: output, mean, biased variance."""
    mean = x.mean(0)
    var = x.var(0, unbiased=False)
    return (x - mean) / torch.sqrt(var + EPS), mean, var


def combinator(a, z_noisy, u):
    mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
    v = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
    return (z_noisy - mu) * v + mu


class Ladder:
    """Parameters: W[l] [out, in], beta[l], gamma (top), V[l] [in, out] (layer l+1 -> l),
    A[l] ten [width] tensors per layer including the input."""

    def __init__(self, sizes, gen):
        self.sizes = sizes
        L = len(sizes) - 1
        # PyTorch's nn.Linear default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        def lin(i, o):
            b = 1.0 / np.sqrt(i)
            return ((torch.rand(o, i, generator=gen) * 2 - 1) * b).requires_grad_()
        self.W = [lin(sizes[l], sizes[l + 1]) for l in range(L)]
        self.beta = [torch.zeros(sizes[l + 1], requires_grad=True) for l in range(L)]
        self.gamma = torch.ones(sizes[L], requires_grad=True)
        self.V = [lin(sizes[l + 1], sizes[l]) for l in range(L)]
        self.A = []
        for w in sizes:
            a = [torch.full((w,), 1.0 if i in (1, 6) else 0.0) for i in range(10)]
            self.A.append([t.requires_grad_() for t in a])
        self.run_mean = [torch.zeros(s) for s in sizes[1:]]
        self.run_var = [torch.ones(s) for s in sizes[1:]]

    def params(self):
        return self.W + self.beta + [self.gamma] + self.V + [t for a in self.A for t in a]

    def act(self, l, z):
        h = z + self.beta[l]
        return h * self.gamma if l == len(self.W) - 1 else F.relu(h)

    def clean(self, x, stats=None):
        """Training mode: batch statistics (returned); evaluation: the given running ones."""
        h, out = x, []
        for l, W in enumerate(self.W):
            pre = h @ W.t()
            if stats is None:
                z, m, v = bn(pre)
                out.append((z, m, v))
            else:
                m, v = stats[l]
                z = (pre - m) / torch.sqrt(v + EPS)
            h = self.act(l, z)
        return h, out

    def noisy(self, x, noise):
        """noise(i, shape): the Gaussian noise added to layer i (0 = input)."""
        zs = [x + noise(0, x.shape)]
        h = zs[0]
        for l, W in enumerate(self.W):
            z = bn(h @ W.t())[0]
            z = z + noise(l + 1, z.shape)
            h = self.act(l, z)
            zs.append(z)
        return h, zs

    def costs(self, x, noise, weights):
        L = len(self.W)
        logits, zs = self.noisy(x, noise)
        need_clean = any(w != 0 for w in weights[1:])
        clean = self.clean(x)[1] if need_clean else None
        costs = [None] * (L + 1)
        above = None
        for l in range(L, -1, -1):
            u = F.softmax(logits, -1) if above is None else above @ self.V[l].t()
            u = bn(u)[0]
            z_hat = combinator(self.A[l], zs[l], u)
            if weights[l] != 0:
                if l == 0:
                    target, zh = x, z_hat
                else:
                    z, m, v = clean[l - 1]
                    target, zh = z, (z_hat - m) / torch.sqrt(v + EPS)
                costs[l] = ((zh - target) ** 2).mean(1)
            above = z_hat
        return logits, costs, clean


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data[4 + 4 * dims:], dtype=np.uint8).reshape(shape)


def load(data, split):
    x = read_idx(f"{data}/{split}-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    y = read_idx(f"{data}/{split}-labels-idx1-ubyte.gz").astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    x_tr, y_tr = load(args.data, "train")
    x_te, y_te = load(args.data, "t10k")
    idx = []
    for c in range(10):
        members = torch.nonzero(y_tr == c).flatten()
        idx.append(members[torch.randperm(len(members), generator=gen)[: args.per_class]])
    lab = torch.cat(idx)
    mask = torch.ones(len(y_tr), dtype=torch.bool)
    mask[lab] = False
    x_l, y_l, x_u = x_tr[lab], y_tr[lab], x_tr[mask]
    weights = [float(w) for w in args.denoise_weights.split(",")]
    sizes = [784, 1000, 500, 250, 250, 250, 10]
    net = Ladder(sizes, gen)
    opt = torch.optim.Adam(net.params(), lr=args.lr, betas=(args.beta1, 0.999))
    decay_start = int(args.decay_from * args.steps)
    noise = lambda i, shape: torch.randn(shape) * args.noise_std
    perm_u, pos_u = torch.randperm(len(x_u)), 0
    t0 = time.time()
    for step in range(args.steps):
        lr = args.lr if step < decay_start else args.lr * (args.steps - step) / (args.steps - decay_start)
        for g in opt.param_groups:
            g["lr"] = lr
        bl = torch.randperm(len(x_l))[: args.batch]
        if pos_u + args.batch > len(x_u):
            perm_u, pos_u = torch.randperm(len(x_u)), 0
        bu = perm_u[pos_u:pos_u + args.batch]
        pos_u += args.batch
        if args.joint:
            # One batch through the network (how saddle batched before session 5's fix).
            logits, costs, _ = net.costs(torch.cat([x_l[bl], x_u[bu]]), noise, weights)
            logits = logits[: len(bl)]
        else:
            # Each half with its own batch statistics: the supervised cost from the corrupted
            # encoder on the labelled half, the denoising costs on the unlabelled half.
            logits = net.noisy(x_l[bl], noise)[0]
            costs = net.costs(x_u[bu], noise, weights)[1]
        sup = F.cross_entropy(logits, y_l[bl])
        den = sum(w * c.mean() for w, c in zip(weights, costs) if c is not None)
        loss = sup + den
        opt.zero_grad()
        loss.backward()
        opt.step()
        done = step + 1
        if done % args.eval_every == 0 or done == args.steps:
            with torch.no_grad():
                # Standing statistics of the clean encoder on 20 unlabelled batches of 200.
                sums = None
                for _ in range(20):
                    b = x_u[torch.randint(len(x_u), (2 * args.batch,))]
                    st = [(m, v * b.shape[0] / (b.shape[0] - 1)) for _, m, v in net.clean(b)[1]]
                    sums = st if sums is None else [(a + m, c + v) for (a, c), (m, v) in zip(sums, st)]
                stats = [(m / 20, v / 20) for m, v in sums]
                pred = net.clean(x_te, stats)[0].argmax(1)
                err = (pred != y_te).float().mean().item()
            print(f"step {done}: supervised {sup.item():.4f} denoising {den.item():.4f} "
                  f"test error {100 * err:.2f}% ({time.time() - t0:.0f} s)", flush=True)


def values(_args):
    """A tiny ladder with fixed weights and explicit noise; literals for the Rust test."""
    torch.set_default_dtype(torch.float64)
    sizes = [4, 3, 2]
    net = Ladder(sizes, torch.Generator().manual_seed(0))
    ar = lambda n, s, o: (torch.arange(n, dtype=torch.float64) * s + o)
    net.W = [(torch.sin(ar(12, 0.7, 0.3)) * 0.8).reshape(3, 4).requires_grad_(),
             (torch.cos(ar(6, 1.1, 0.2)) * 0.9).reshape(2, 3).requires_grad_()]
    net.V = [(torch.sin(ar(12, 0.5, 1.0)) * 0.6).reshape(4, 3).requires_grad_(),
             (torch.cos(ar(6, 0.9, 0.4)) * 0.7).reshape(3, 2).requires_grad_()]
    net.beta = [ar(3, 0.1, -0.1).requires_grad_(), ar(2, -0.2, 0.05).requires_grad_()]
    net.gamma = ar(2, 0.5, 0.8).requires_grad_()
    net.A = [[(torch.sin(ar(w, 0.3, 0.7 * i + 0.1)) * 0.5 + (1.0 if i in (1, 6) else 0.0))
              .requires_grad_() for i in range(10)] for w in sizes]
    x = (torch.sin(ar(20, 0.37, 0.0)) * 0.5 + 0.5).reshape(5, 4)
    noises = [torch.cos(ar(5 * w, 0.23, 0.1 * i)).reshape(5, w) * 0.3 for i, w in enumerate(sizes)]
    noise = lambda i, shape: noises[i]
    weights = [1000.0, 10.0, 0.1]
    labels = torch.tensor([0, 1, 1, 0, 1])
    logits, costs, clean = net.costs(x, noise, weights)
    sup = F.cross_entropy(logits[:3], labels[:3])
    den = sum(w * c.mean() for w, c in zip(weights, costs))
    loss = sup + den
    loss.backward()
    fmt = lambda t: "[" + ", ".join(f"{v:.9e}" for v in t.detach().flatten().tolist()) + "]"
    print("noisy logits", fmt(logits))
    print("clean logits (batch stats)", fmt(net.clean(x)[0]))
    for l, c in enumerate(costs):
        print(f"cost {l}", fmt(c))
    print("supervised (first 3 labelled)", f"{sup.item():.9e}")
    print("loss", f"{loss.item():.9e}")
    print("grad W0", fmt(net.W[0].grad))
    print("grad W1", fmt(net.W[1].grad))
    print("grad V0", fmt(net.V[0].grad))
    print("grad V1", fmt(net.V[1].grad))
    print("grad beta0", fmt(net.beta[0].grad))
    print("grad gamma", fmt(net.gamma.grad))
    print("grad A[1] a1", fmt(net.A[1][0].grad))
    print("grad A[0] a6", fmt(net.A[0][5].grad))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--steps", type=int, default=500)
    t.add_argument("--eval-every", type=int, default=250)
    t.add_argument("--per-class", type=int, default=10)
    t.add_argument("--batch", type=int, default=100)
    t.add_argument("--joint", action="store_true",
                   help="normalise labelled and unlabelled images as one batch (the old behaviour)")
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--beta1", type=float, default=0.5)
    t.add_argument("--decay-from", type=float, default=2 / 3)
    t.add_argument("--noise-std", type=float, default=0.3)
    t.add_argument("--denoise-weights", default="0,0,0,0,0,0,0")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    sub.add_parser("values")
    a = p.parse_args()
    train(a) if a.cmd == "train" else values(a)

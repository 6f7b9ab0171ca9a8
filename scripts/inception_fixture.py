#!/usr/bin/env python3
"""Reference outputs of pytorch-fid's Inception-v3 for saddle's parity tests.

Builds the FID Inception-v3 in PyTorch with a channel-width divisor (1 is the real network),
fills it with deterministic weights that saddle's test computes by the same formula (so no
weights need to be committed), runs a fixed batch and writes:

  gan/tests/fixtures/inception_fid_keys.txt   the divisor-1 state_dict: "name shape" per line
  gan/tests/fixtures/inception_fid_d8.json     divisor 8: the input formula, pool3 and logits
  gan/tests/fixtures/inception_fid_d1.json     divisor 1 (with --full), the same

With --check-pytorch-fid it also builds pytorch-fid's own FIDInceptionV3 (torchvision's
Inception3 with pytorch-fid's block classes, no weight download) and checks that its state_dict
has the same names and shapes as this script's network at divisor 1 and that both give the same
outputs with the same weights: that is what makes this script's divisor-8 network a faithful
copy. --full also writes the divisor-1 outputs (the real network's width).

Usage: benches/.venv/bin/python scripts/inception_fixture.py [--check-pytorch-fid] [--full]
"""

import argparse
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "gan", "tests", "fixtures")


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class BlockA(nn.Module):
    def __init__(self, c, cin, pool):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, c(64), 1)
        self.branch5x5_1 = BasicConv2d(cin, c(48), 1)
        self.branch5x5_2 = BasicConv2d(c(48), c(64), 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, c(64), 1)
        self.branch3x3dbl_2 = BasicConv2d(c(64), c(96), 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(c(96), c(96), 3, padding=1)
        self.branch_pool = BasicConv2d(cin, c(pool), 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
        return torch.cat([b1, b5, b3, bp], 1)


class BlockB(nn.Module):
    def __init__(self, c, cin):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, c(384), 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, c(64), 1)
        self.branch3x3dbl_2 = BasicConv2d(c(64), c(96), 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(c(96), c(96), 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, 2)], 1)


class BlockC(nn.Module):
    def __init__(self, c, cin, c7):
        super().__init__()
        c7 = c(c7)
        self.branch1x1 = BasicConv2d(cin, c(192), 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, c(192), (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, c(192), (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, c(192), 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for i in range(1, 6):
            bd = getattr(self, f"branch7x7dbl_{i}")(bd)
        bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
        return torch.cat([b1, b7, bd, bp], 1)


class BlockD(nn.Module):
    def __init__(self, c, cin):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, c(192), 1)
        self.branch3x3_2 = BasicConv2d(c(192), c(320), 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, c(192), 1)
        self.branch7x7x3_2 = BasicConv2d(c(192), c(192), (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(c(192), c(192), (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(c(192), c(192), 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, 2)], 1)


class BlockE(nn.Module):
    def __init__(self, c, cin, max_pool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, c(320), 1)
        self.branch3x3_1 = BasicConv2d(cin, c(384), 1)
        self.branch3x3_2a = BasicConv2d(c(384), c(384), (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(c(384), c(384), (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, c(448), 1)
        self.branch3x3dbl_2 = BasicConv2d(c(448), c(384), 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(c(384), c(384), (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(c(384), c(384), (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, c(192), 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.max_pool:
            bp = F.max_pool2d(x, 3, 1, 1)
        else:
            bp = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        return torch.cat([b1, b3, bd, self.branch_pool(bp)], 1)


class FidInception(nn.Module):
    def __init__(self, divisor):
        super().__init__()
        c = lambda n: n // divisor  # noqa: E731
        self.Conv2d_1a_3x3 = BasicConv2d(3, c(32), 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(c(32), c(32), 3)
        self.Conv2d_2b_3x3 = BasicConv2d(c(32), c(64), 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(c(64), c(80), 1)
        self.Conv2d_4a_3x3 = BasicConv2d(c(80), c(192), 3)
        self.Mixed_5b = BlockA(c, c(192), 32)
        self.Mixed_5c = BlockA(c, c(256), 64)
        self.Mixed_5d = BlockA(c, c(288), 64)
        self.Mixed_6a = BlockB(c, c(288))
        self.Mixed_6b = BlockC(c, c(768), 128)
        self.Mixed_6c = BlockC(c, c(768), 160)
        self.Mixed_6d = BlockC(c, c(768), 160)
        self.Mixed_6e = BlockC(c, c(768), 192)
        self.Mixed_7a = BlockD(c, c(768))
        self.Mixed_7b = BlockE(c, c(1280), False)
        self.Mixed_7c = BlockE(c, c(2048), True)
        self.fc = nn.Linear(c(2048), 1008)

    def forward(self, x):
        """x in [0, 1]: pytorch-fid's resize and scaling, then pool3 and logits."""
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, 2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, 2)
        for name in ["5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"]:
            x = getattr(self, "Mixed_" + name)(x)
        pool3 = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return pool3, self.fc(pool3)


def formula_state(state):
    """The deterministic weights saddle's test computes the same way: tensor k of the sorted
    names (num_batches_tracked left out), element i, u = sin(0.7071 i + 1.618 k + 0.25)."""
    names = sorted(n for n in state if not n.endswith("num_batches_tracked"))
    out = {}
    for k, name in enumerate(names):
        shape = state[name].shape
        n = state[name].numel()
        i = torch.arange(n, dtype=torch.float64)
        u = torch.sin(0.7071 * i + 1.618 * k + 0.25)
        if name.endswith("conv.weight"):
            fan_in = n // shape[0]
            v = u * 2.0 * math.sqrt(1.0 / fan_in)
        elif name == "fc.weight":
            v = u * math.sqrt(1.0 / shape[1])
        elif name.endswith("bn.weight"):
            v = 1.0 + 0.2 * u
        elif name.endswith("running_var"):
            v = 1.0 + 0.25 * (u + 1.0)
        else:  # biases and running means
            v = 0.1 * u
        out[name] = v.reshape(shape).to(torch.float32)
    return out


def formula_input(n, c, h, w):
    i = torch.arange(n * c * h * w, dtype=torch.float64)
    return (0.5 + 0.5 * torch.sin(0.37 * i + 0.1)).reshape(n, c, h, w).to(torch.float32)


def run(divisor):
    """pool3 and logits of the formula input in float64 (the reference saddle's float32 pass
    is held to) and float32 (PyTorch's own float32 error, for comparison)."""
    net = FidInception(divisor).eval()
    net.load_state_dict(formula_state(net.state_dict()), strict=False)
    x = formula_input(2, 3, 28, 28)
    with torch.no_grad():
        pool3_32, logits_32 = net(x)
        net = net.double()
        pool3, logits = net(x.double())
    return pool3, logits, pool3_32, logits_32


def relative(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


def write_outputs(path, divisor, pool3, logits, pool3_32, logits_32):
    with open(path, "w") as f:
        json.dump(
            {
                "divisor": divisor,
                "input": "[2, 3, 28, 28], 0.5 + 0.5 sin(0.37 i + 0.1)",
                "torch": torch.__version__,
                "dtype": "float64 (weights and input computed in float64, stored as float32)",
                "torch_float32_relative_error": {
                    "pool3": relative(pool3_32, pool3),
                    "logits": relative(logits_32, logits),
                },
                "pool3": pool3.flatten().tolist(),
                "logits": logits.flatten().tolist(),
            },
            f,
        )
    print("wrote", path, "; PyTorch's own float32 relative error:",
          relative(pool3_32, pool3), relative(logits_32, logits))


def check_pytorch_fid():
    """pytorch-fid's network (torchvision's Inception3 with pytorch-fid's FID blocks, as its
    fid_inception_v3 builds it, without the weight download) against this script's at
    divisor 1."""
    import torchvision
    from pytorch_fid import inception as fid

    ref = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, init_weights=False)
    ref.Mixed_5b = fid.FIDInceptionA(192, pool_features=32)
    ref.Mixed_5c = fid.FIDInceptionA(256, pool_features=64)
    ref.Mixed_5d = fid.FIDInceptionA(288, pool_features=64)
    ref.Mixed_6b = fid.FIDInceptionC(768, channels_7x7=128)
    ref.Mixed_6c = fid.FIDInceptionC(768, channels_7x7=160)
    ref.Mixed_6d = fid.FIDInceptionC(768, channels_7x7=160)
    ref.Mixed_6e = fid.FIDInceptionC(768, channels_7x7=192)
    ref.Mixed_7b = fid.FIDInceptionE_1(1280)
    ref.Mixed_7c = fid.FIDInceptionE_2(2048)
    ours = FidInception(1)
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert ref_shapes == our_shapes, set(ref_shapes) ^ set(our_shapes)
    weights = formula_state(ours.state_dict())
    ref.load_state_dict(weights, strict=False)
    ours.load_state_dict(weights, strict=False)
    # torchvision's forward (transform_input off, dropout off in eval) is pytorch-fid's after
    # its resize and scaling; pool3 is the input of fc.
    ref.eval()
    ours.eval()
    pooled = {}
    ref.avgpool.register_forward_hook(lambda m, i, o: pooled.update(pool3=o.flatten(1)))
    x = formula_input(2, 3, 28, 28)
    with torch.no_grad():
        scaled = 2 * F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
        want_logits = ref(scaled)
        want = pooled["pool3"]
        got, got_logits = ours(x)
    logit_err = ((want_logits - got_logits).abs().max() / want_logits.abs().max()).item()
    print(f"logits: max relative error {logit_err:.2e}")
    assert logit_err < 1e-5
    err = ((want - got).abs().max() / want.abs().max()).item()
    print(f"this script's network vs pytorch-fid's, divisor 1: max relative error {err:.2e}")
    assert err < 1e-5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-pytorch-fid", action="store_true")
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(FIXTURES, exist_ok=True)
    full = FidInception(1)
    with open(os.path.join(FIXTURES, "inception_fid_keys.txt"), "w") as f:
        for name, t in full.state_dict().items():
            f.write(f"{name} {list(t.shape)}\n")
    print("wrote the divisor-1 state_dict names and shapes")
    if args.check_pytorch_fid:
        check_pytorch_fid()
    write_outputs(os.path.join(FIXTURES, "inception_fid_d8.json"), 8, *run(8))
    if args.full:
        write_outputs(os.path.join(FIXTURES, "inception_fid_d1.json"), 1, *run(1))


if __name__ == "__main__":
    main()

"""Writes examples/data/tiny_net.safetensors and tiny_net.json for `cargo run --example
pytorch_interop`: a small PyTorch network (3x3 conv, ReLU, linear) with seeded random weights,
its state_dict saved with safetensors, and the logits it gives for a fixed input.

    benches/.venv/bin/python examples/data/make_tiny_net.py
"""
import json
import pathlib

import torch
from safetensors.torch import save_file


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
        self.fc = torch.nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


torch.manual_seed(0)
net = TinyNet().eval()
x = torch.linspace(-1.0, 1.0, 2 * 16).reshape(2, 1, 4, 4)
with torch.no_grad():
    logits = net(x)
here = pathlib.Path(__file__).parent
save_file({k: v.contiguous() for k, v in net.state_dict().items()}, here / "tiny_net.safetensors")
(here / "tiny_net.json").write_text(json.dumps({
    "torch": torch.__version__,
    "input_shape": list(x.shape),
    "input": "linspace(-1, 1, 32) reshaped",
    "logits": logits.flatten().tolist(),
}, indent=1) + "\n")
print("logits", logits)

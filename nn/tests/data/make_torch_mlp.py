# Produces torch_mlp.safetensors (PyTorch 2.15, safetensors 0.x) and prints the expected output
# used as literals in nn/tests/checkpoint.rs.
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LeakyReLU(0.2), torch.nn.Linear(3, 2))
save_file({k: v.contiguous() for k, v in net.state_dict().items()}, "torch_mlp.safetensors")
x = torch.tensor([[0.5, -1.0, 2.0, 0.25], [-0.3, 0.8, 0.0, -1.5]])
print([round(v, 6) for v in net(x).flatten().tolist()])

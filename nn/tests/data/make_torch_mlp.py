# Produces torch_mlp.safetensors (PyTorch 2.15, safetensors 0.x) and prints the expected output
# used as literals in nn/tests/checkpoint.rs.
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LeakyReLU(0.2), torch.nn.Linear(3, 2))
save_file({k: v.contiguous() for k, v in net.state_dict().items()}, "torch_mlp.safetensors")
x = torch.tensor([[0.5, -1.0, 2.0, 0.25], [-0.3, 0.8, 0.0, -1.5]])
print([round(v, 6) for v in net(x).flatten().tolist()])

# torch_conv.safetensors: Conv2d(2, 3, 3, stride 2, pad 1) then ConvTranspose2d(3, 2, 4, stride 2,
# pad 1), names prefixed conv. / convt. (PyTorch layouts: OIHW and [in, out, kH, kW]).
torch.manual_seed(0)
c = torch.nn.Conv2d(2, 3, 3, stride=2, padding=1)
t = torch.nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1)
sd = {("conv." + k): v.contiguous() for k, v in c.state_dict().items()}
sd.update({("convt." + k): v.contiguous() for k, v in t.state_dict().items()})
save_file(sd, "torch_conv.safetensors")
x = torch.arange(2 * 2 * 5 * 5, dtype=torch.float32).reshape(2, 2, 5, 5) * 0.05 - 1.0
y = t(torch.relu(c(x)))
print(list(y.shape), [round(v, 5) for v in y.flatten().tolist()[:12]], round(y.sum().item(), 4))

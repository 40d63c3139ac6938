"""PyTorch CPU reference for `make bench-train`: the same endogenous-volatility deep BSDE
(q = 2, N = 40, batch 128, f64) as eqlab's `deep::bsde` — per-step MLPs (in 2, two hidden ReLU
layers of width W, out 2) with biases, trainable Y0, Z0, ΔS0, σ0/a − 1, the same Euler rollout
and clipped terminal loss, Adam (eps 1e-8). Prints ms per Adam step."""
import math
import sys
import time

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300
width = int(sys.argv[3]) if len(sys.argv) > 3 else 15
torch.set_num_threads(threads)
torch.manual_seed(1)

# Paper calibration (spec gms-fbsde §1).
a, s, gbar, kappa = 1.88, 2.46e11, 8.31e-14, 0.5
g1, g2 = gbar * (kappa + 1), gbar * (kappa + 1) / kappa
c1, c2 = 0.5 * (g1 - g2), 0.5 * (g1 + g2)
lam, beta, T, N, clip = 1.08e-10, 2.19e10, 20.0, 40, 500.0
dt = T / N
theta = beta / a
x_norm, w_norm = 1 / (theta * math.sqrt(T)), 1 / math.sqrt(T)
B = 128


def mlp():
    return torch.nn.Sequential(
        torch.nn.Linear(2, width), torch.nn.ReLU(),
        torch.nn.Linear(width, width), torch.nn.ReLU(),
        torch.nn.Linear(width, 2))


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.y0 = torch.nn.Parameter(torch.zeros(1))
        self.z0 = torch.nn.Parameter(torch.zeros(1))
        self.d0 = torch.nn.Parameter(torch.zeros(1))
        self.v0 = torch.nn.Parameter(torch.zeros(1))
        self.nets = torch.nn.ModuleList([mlp() for _ in range(N - 1)])

    def forward(self, dw):
        zeros = torch.zeros(B, 1)
        xs, w = zeros.clone(), zeros.clone()
        y, z, d, v = zeros + self.y0, zeros + self.z0, zeros + self.d0, zeros + self.v0
        for k in range(N):
            dwk = dw[:, k:k + 1]
            x_sh = xs * s
            sigma = (v + 1.0) * a
            expo = sigma * x_sh + w * beta
            dy = z * dwk + sigma * expo * (c2 * dt)
            dd = (sigma - a) * dwk + ((sigma ** 2 - a * a) * (gbar * s) + sigma * expo * c1) * dt
            xs = xs + y / lam * (dt / s)
            y = y + dy
            d = d + dd
            w = w + dwk
            if k + 1 < N:
                u = torch.cat([xs * (s * x_norm), w * w_norm], 1)
                out = self.nets[k](u)
                z, v = out[:, 0:1], out[:, 1:2]
        return (y.clamp(-clip, clip) ** 2 + d.clamp(-clip, clip) ** 2).mean()


model = Model()
opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
rng = np.random.default_rng(1)


def step():
    dw = torch.from_numpy(rng.standard_normal((B, N)) * math.sqrt(dt))
    opt.zero_grad()
    loss = model(dw)
    loss.backward()
    opt.step()
    return loss.item()


for _ in range(20):
    step()
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(steps):
    loss = step()
el, cpu = time.perf_counter() - t0, time.process_time() - c0
print(f"torch {torch.__version__} threads={threads}: {1e3 * el / steps:.3f} ms/step "
      f"(loss {loss:.3e}, {sum(p.numel() for p in model.parameters())} parameters), "
      f"cpu {1e3 * cpu / steps:.3f} ms/step")

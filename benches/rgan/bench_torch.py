"""PyTorch CPU reference for `make bench-rgan`: the Reinforced-GAN of eqlab's `deep::rgan` for
case A (N = 10, K = 100, per-step MLPs (N+2) → 50 → 50 → 50 → out with tanh, μ learned, the
reinforcement link, batch 1000, f64), the same rollout and losses. Prints ms per generator and
per discriminator Adam step. Usage: bench_torch.py [threads] [steps] [batch]."""
import math
import sys
import time

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
B = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
torch.set_num_threads(threads)
torch.manual_seed(1)

gamma = torch.tensor([1.0 + 0.1 * i for i in range(10)])
xi = -10 * torch.tensor([-2.89, -1.49, -1.18, 1.40, 1.91, 2.70, -2.22, -3.15, 2.63, 2.29])
alpha, beta, s, lam, q, T, K = 1.0, 2.0, 1.0, 1e-2, 2.0, 0.2, 100
N = len(gamma)
dt = T / K
gbar = 1.0 / (1.0 / gamma).sum()
phi0 = s * gbar / gamma
weights = (xi.abs().max() / xi.abs()) ** 2


def mlp(out):
    return torch.nn.Sequential(
        torch.nn.Linear(N + 2, 50), torch.nn.Tanh(),
        torch.nn.Linear(50, 50), torch.nn.Tanh(),
        torch.nn.Linear(50, 50), torch.nn.Tanh(),
        torch.nn.Linear(50, out))


class Gen(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.nets = torch.nn.ModuleList([mlp(N) for _ in range(K)])


class Disc(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.sigma = torch.nn.Parameter(torch.full((K,), alpha))
        self.mu = torch.nn.ModuleList([mlp(1) for _ in range(K)])
        self.s0 = torch.nn.Parameter(torch.tensor([(beta - gbar * alpha ** 2 * s) * T]))


def rollout(g, d, dw):
    phi = phi0.expand(B, N).clone()
    w = torch.zeros(B, 1)
    S = d.s0.expand(B, 1)
    sig_all = d.sigma.abs()
    util_w = torch.zeros(B, N)
    clear = torch.zeros(B, 1)
    rate_sq = torch.zeros(B, N)
    mu_sq = torch.zeros(B, 1)
    drivers = []
    ones = torch.ones(B, 1)
    for k in range(K):
        dwk = dw[:, k:k + 1]
        dphi = phi - (phi0 - w * xi / alpha)
        sig = sig_all[k]
        inp = torch.cat([dphi, w, ones], 1)
        expo = phi * sig + w * xi
        mu = d.mu[k](inp)
        rate = g.nets[k](inp)
        ell = -mu * phi + 0.5 * gamma * expo ** 2 + 0.5 * lam * rate.abs() ** q
        util_w = util_w + ell * weights
        drivers.append(mu - expo * gamma * sig)
        clear = clear + rate.mean(1, keepdim=True) ** 2
        rate_sq = rate_sq + rate ** 2
        mu_sq = mu_sq + mu ** 2
        S = S + mu * dt + sig * dwk
        phi = phi + rate * dt
        w = w + dwk
    term = ((S - alpha * w - beta * T) ** 2).mean()
    gen_loss = (util_w / K).mean(1).mean() + 1e-3 * (rate_sq / K).mean() + (clear / K).mean()
    y = torch.zeros(B, N)
    link = torch.zeros(B, 1)
    for k in reversed(range(K)):
        y = y + drivers[k]
        link = link + (y / (K - k)).mean(1, keepdim=True) ** 2
    disc_reg = 1e-3 * ((sig_all ** 2).mean() + (mu_sq / K).mean())
    return gen_loss, term * 1e3 + link.mean() + disc_reg


g, d = Gen(), Disc()
rng = np.random.default_rng(1)


def timed(train, frozen, which, n):
    for p in frozen.parameters():
        p.requires_grad_(False)
    for p in train.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(train.parameters(), lr=1e-3)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        dw = torch.from_numpy(rng.standard_normal((B, K)) * math.sqrt(dt))
        opt.zero_grad()
        loss = rollout(g, d, dw)[which]
        loss.backward()
        opt.step()
    return 1e3 * (time.perf_counter() - t0) / n, 1e3 * (time.process_time() - c0) / n


timed(g, d, 0, 3)
g_ms, g_cpu = timed(g, d, 0, steps)
timed(d, g, 1, 3)
d_ms, d_cpu = timed(d, g, 1, steps)
print(f"torch {torch.__version__} threads={threads}: generator {g_ms:.1f} ms/step, "
      f"discriminator {d_ms:.1f} ms/step, cpu generator {g_cpu:.1f} ms/step, "
      f"cpu discriminator {d_cpu:.1f} ms/step")

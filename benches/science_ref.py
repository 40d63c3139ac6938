#!/usr/bin/env python3
"""Python (numpy/scipy) reference for `make bench-science` (see benches/README.md).

It solves the same problems as eqlab's `finance` module, with the same algorithms, so that the
two can be timed side by side by `benches/science.sh`:

* ``ode``: the normalised power-cost problem of spec §8/§10.1 for q in {1.1, 1.5, 2}: the
  constant c_q by shooting (scipy ``solve_ivp``, Radau, analytic Jacobian, rtol 1e-12, from the
  growth branch at y = -L = -12 forward to 0) and ``brentq`` on [0.5, 3.5] to 1e-15; then the
  potential drop, the g~ grid (2401 points on [-L, 0]) and the integrals Z_q, V_q (Radau on the
  augmented system [g, Psi, I0, I2, IT]); then the turnover/variance matching (B.8), (B.6) that
  gives (lambda_q, beta_q).
* ``sim``: the simulation of spec §10.3 for the four calibrated models (proportional, quadratic,
  q = 1.5, q = 1.1) on common Gaussian increments, vectorised over paths with numpy (loop over
  time steps only; no path is stored): exact OU for quadratic, Euler-Maruyama (or drift-implicit
  Euler, chosen by the same stiffness rule as eqlab) on a linearly interpolated drift table for
  power costs, and the projected random walk with the Asmussen-Glynn-Pitman boundary shift for
  proportional costs. The same statistics as eqlab's `simulate` are accumulated on the fly:
  pooled mean/sd of daily turnover and X, a 60-bin histogram of X, and the path-averaged sample
  ACFs of daily X and turnover at lags 0..40.

Each invocation prints one JSON object on stdout. Setup (imports, ODE solves for the drift
tables) is not included in the reported times.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

# ---------------------------------------------------------------------------------------------
# Calibration inputs (spec §5, §6): the paper's frictionless economy and the (ShTu, lambda_p)
# backed out of the published quadratic pair (1.08e-10, 2.19e10).
SIGMA = 1.88
GAMMA_BAR = 8.31e-14
GAMMA1 = GAMMA_BAR * 1.5
GAMMA2 = GAMMA_BAR * 3.0
GAMMA_SUM = GAMMA1 + GAMMA2
GAMMA_TILDE = 0.5 * GAMMA_SUM
L_DOMAIN = 12.0
N_HALF = 2400
RTOL = 1e-12
ATOL = RTOL * 1e-3
AGP_SHIFT = 0.5826


def back_out(lambda2=1.08e-10, beta2=2.19e10):
    """(ShTu, lambda_p) from a published quadratic pair (spec §6)."""
    shtu = beta2 / (math.sqrt(math.pi * SIGMA) * (2.0 * lambda2 / GAMMA_SUM) ** 0.25)
    return shtu, math.pi * shtu * lambda2 / 2.0


SHTU, LAMBDA_P = back_out()


# ---------------------------------------------------------------------------------------------
# Normalised power problem (spec §8, §10.1)
def constants(q):
    p = q / (q - 1.0)
    return p, (q - 1.0) * q ** (-p)


def start_value(q, c, l):
    """g~(-L) on the growth branch (slow manifold with the leading slope correction)."""
    p, k = constants(q)
    g1 = q * (l * l / (q - 1.0)) ** ((q - 1.0) / q)
    slope = -2.0 * l / (p * k * g1 ** (p - 1.0))
    return (max(l * l - c - slope, 0.0) / k) ** (1.0 / p)


def h_of_g(q, g):
    return math.copysign((abs(g) / q) ** (1.0 / (q - 1.0)), g) if g != 0.0 else 0.0


def dh_dg(q, g):
    if q == 2.0:
        return 0.5
    a = 1.0 / (q - 1.0)
    return a / q * (abs(g) / q) ** (a - 1.0)


def ivp_kwargs():
    return {"method": "Radau", "rtol": RTOL, "atol": ATOL, "first_step": 1e-4, "max_step": 0.5}


def shooting_miss(q, c, l=L_DOMAIN):
    """F(c) = g~(0; c) with the sign-preserving first-order form (spec §10.1 item 4)."""
    p, k = constants(q)

    def f(y, s):
        g = s[0]
        return [y * y - c - k * math.copysign(abs(g) ** p, g)]

    def jac(y, s):
        return [[-k * p * abs(s[0]) ** (p - 1.0)]]

    sol = solve_ivp(f, (-l, 0.0), [start_value(q, c, l)], jac=jac, **ivp_kwargs())
    if not sol.success:
        raise RuntimeError(f"shooting failed for q={q}, c={c}: {sol.message}")
    return sol.y[0, -1]


def solve_power(q, l=L_DOMAIN, n_half=N_HALF):
    """c_q, Z_q, V_q and the g~ grid on [-L, 0] for one q."""
    c = brentq(lambda cc: shooting_miss(q, cc, l), 0.5, 3.5, xtol=1e-15)
    p, k = constants(q)
    g0 = start_value(q, c, l)

    # pass 1: the potential drop Psi(0) - Psi(-L), so that e^Psi <= 1 in pass 2
    def f1(y, s):
        g = s[0]
        return [y * y - c - k * abs(g) ** p, h_of_g(q, g)]

    def j1(y, s):
        g = s[0]
        return [[-k * p * math.copysign(abs(g) ** (p - 1.0), g), 0.0], [dh_dg(q, g), 0.0]]

    sol1 = solve_ivp(f1, (-l, 0.0), [g0, 0.0], jac=j1, **ivp_kwargs())
    drop = sol1.y[1, -1]

    # pass 2: [g, Psi, I0, I2, IT] on the output grid
    def f2(y, s):
        g, psi = s[0], s[1]
        h = h_of_g(q, g)
        e = math.exp(psi)
        return [y * y - c - k * abs(g) ** p, h, e, y * y * e, abs(h) * e]

    def j2(y, s):
        g, psi = s[0], s[1]
        h = h_of_g(q, g)
        dh = dh_dg(q, g)
        e = math.exp(psi)
        sg = math.copysign(1.0, g)
        return [
            [-k * p * sg * abs(g) ** (p - 1.0), 0.0, 0.0, 0.0, 0.0],
            [dh, 0.0, 0.0, 0.0, 0.0],
            [0.0, e, 0.0, 0.0, 0.0],
            [0.0, y * y * e, 0.0, 0.0, 0.0],
            [sg * dh * e, abs(h) * e, 0.0, 0.0, 0.0],
        ]

    grid = np.linspace(-l, 0.0, n_half + 1)
    sol2 = solve_ivp(f2, (-l, 0.0), [g0, -drop, 0.0, 0.0, 0.0], jac=j2, t_eval=grid, **ivp_kwargs())
    if not sol2.success:
        raise RuntimeError(f"integrals failed for q={q}: {sol2.message}")
    end = sol2.y[:, -1]
    scale = math.exp(-end[1])
    i0, i2, it = end[2] * scale, end[3] * scale, end[4] * scale
    z = 2.0 * i0
    return {
        "q": q,
        "c": c,
        "z": z,
        "v": i2 / i0,
        "turnover_check_times_z": 2.0 * it,
        "g_at_zero": end[0],
        "y": grid,
        "g": sol2.y[0].copy(),
    }


def match_power(sol):
    """(B.8) and (B.6): lambda_q and beta_q from Z_q, V_q."""
    q, z, v = sol["q"], sol["z"], sol["v"]
    lam = 2.0 ** (q - 1.0) * q * LAMBDA_P / (v * z**q * SHTU ** (q - 1.0))
    delta4 = (SHTU * z) ** (q + 2.0) * lam / (2.0 ** (q - 1.0) * q * GAMMA_TILDE * SIGMA**2)
    return lam, SIGMA * delta4**0.25


def rescaling_c1(q, lam, delta):
    e = 1.0 / (q + 2.0)
    return (
        2.0 ** ((q - 1.0) * e)
        * delta ** (-2.0 * q * e)
        * lam ** (-e)
        * (q * GAMMA_TILDE * SIGMA**2) ** e
    )


def run_ode(args):
    times, cpu_times, per_q, results = [], [], {}, []
    for _ in range(args.inner):
        results = []
        t0, c0 = time.perf_counter(), time.process_time()
        for q in (1.1, 1.5, 2.0):
            tq = time.perf_counter()
            sol = solve_power(q)
            lam, beta = match_power(sol)
            per_q.setdefault(repr(q), []).append(time.perf_counter() - tq)
            results.append(
                dict(
                    q=q,
                    c=sol["c"],
                    z=sol["z"],
                    v=sol["v"],
                    **{"lambda": lam},
                    beta=beta,
                    turnover_check_times_z=sol["turnover_check_times_z"],
                )
            )
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    return {
        "task": "ode",
        "impl": "python",
        "threads": 1,
        "inner": args.inner,
        "times_s": times,
        "cpu_times_s": cpu_times,
        "per_q_s": per_q,
        "results": results,
    }


# ---------------------------------------------------------------------------------------------
# Simulation (spec §10.3)
class DriftTable:
    """Physical drift r(x) = (delta^2 c1 / 2) H~(c1 x) on 24001 points of [-L/c1, L/c1],
    evaluated from the g~ grid by cubic Hermite interpolation (as eqlab does), then linearly
    interpolated during the simulation."""

    N = 24_000

    def __init__(self, sol, delta, c1):
        q, c = sol["q"], sol["c"]
        p, k = constants(q)
        yh, gh = sol["y"], sol["g"].copy()
        gh[-1] = 0.0
        y = np.concatenate([yh, -yh[-2::-1]])
        g = np.concatenate([gh, -gh[-2::-1]])
        gp = y * y - c - k * np.abs(g) ** p
        l = sol["y"][0] * -1.0
        dy = y[1] - y[0]
        self.x0 = -l / c1
        self.dx = 2.0 * l / c1 / self.N
        x = self.x0 + np.arange(self.N + 1) * self.dx
        yy = np.clip(c1 * x, -l, l)
        i = np.minimum(np.floor((yy + l) / dy).astype(np.int64), len(y) - 2)
        t = (yy - y[i]) / dy
        t2, t3 = t * t, t * t * t
        gt = (
            (2 * t3 - 3 * t2 + 1) * g[i]
            + (t3 - 2 * t2 + t) * dy * gp[i]
            + (-2 * t3 + 3 * t2) * g[i + 1]
            + (t3 - t2) * dy * gp[i + 1]
        )
        self.r = 0.5 * delta * delta * c1 * np.sign(gt) * (np.abs(gt) / q) ** (1.0 / (q - 1.0))
        self.slope = np.diff(self.r) / self.dx
        self.c1 = c1
        self.last = self.N - 1

    def max_slope(self, y_max):
        left = self.x0 + np.arange(self.N) * self.dx
        return float(np.max(np.abs(self.slope[np.abs(left) <= y_max / self.c1])))

    def eval(self, x):
        """Drift and local slope (the table is linearly extended beyond |c1 x| = L, where the
        stationary density is below e^-100: never reached in practice)."""
        pos = (x - self.x0) / self.dx
        i = np.clip(pos.astype(np.int64), 0, self.last)
        s = self.slope[i]
        return self.r[i] + (pos - i) * self.dx * s, s

    def implicit(self, b, h):
        """Solves x - h r(x) = b (r decreasing: monotone) by safeguarded Newton, like eqlab."""
        rb, _ = self.eval(b)
        pos = rb >= 0.0
        lo = np.where(pos, b, b + h * rb)
        hi = np.where(pos, b + h * rb, b)
        x = b.copy()
        tol = 1e-13 * (np.abs(b) + self.dx)
        for _ in range(100):
            r, s = self.eval(x)
            phi = x - h * r - b
            done = np.abs(phi) <= tol
            if done.all():
                break
            up = phi > 0.0
            hi = np.where(up, x, hi)
            lo = np.where(up, lo, x)
            newton = x - phi / (1.0 - h * s)
            ok = (newton > lo) & (newton < hi)
            x = np.where(done, x, np.where(ok, newton, 0.5 * (lo + hi)))
        return x


class LagSums:
    """Per-path sample ACF at lags 0..L (demeaned by each path's own mean, normalised by the
    lag-0 autocovariance, as eqlab's `stats::acf`), accumulated online without storing the path:
    S_l = sum_t x_t x_{t+l} through a doubled ring buffer whose contiguous window holds
    x_t, x_{t-1}, ..., x_{t-L}, plus the sums of the first and last L values for the demeaning."""

    def __init__(self, max_lag, n):
        self.L = max_lag
        self.buf = np.zeros((2 * (max_lag + 1), n))
        self.s = np.zeros((max_lag + 1, n))
        self.tmp = np.empty((max_lag + 1, n))
        self.head = np.zeros((max_lag + 1, n))  # head[l] = sum of the first l values
        self.total = np.zeros(n)
        self.t = 0

    def add(self, x):
        big = self.L + 1
        t = self.t
        r = self.L - t % big
        self.buf[r] = x
        self.buf[r + big] = x
        win = self.buf[r : r + big]
        np.multiply(win, x, out=self.tmp)
        self.s += self.tmp
        self.total += x
        if t < self.L:
            self.head[t + 1 :] += x
        self.t += 1

    def acf(self):
        """Path-averaged ACF at lags 0..L (the window now holds the last L+1 values)."""
        n, big = self.t, self.L + 1
        r = self.L - (n - 1) % big
        last = self.buf[r : r + big]  # last[l] = x_{n-1-l}
        tail_of_last = np.cumsum(last, axis=0) - last  # sum of the last l values
        m = self.total / n
        lags = np.arange(big)[:, None]
        head_l = self.total - tail_of_last  # sum_{t <= n-1-l} x_t
        tail_l = self.total - self.head  # sum_{t >= l} x_t
        c = self.s - m * (head_l + tail_l) + (n - lags) * m * m
        return (c / c[0]).mean(axis=1)


class Moments:
    """Pooled sums for mean and sd over all path-days."""

    def __init__(self):
        self.n, self.s1, self.s2 = 0, 0.0, 0.0

    def add(self, v):
        self.n += v.size
        self.s1 += float(v.sum())
        self.s2 += float(np.dot(v, v))

    def mean(self):
        return self.s1 / self.n

    def sd(self):
        m = self.mean()
        return math.sqrt(max(self.s2 / self.n - m * m, 0.0) * self.n / (self.n - 1))


def calibrated_models():
    """The four models of the benchmark, parameters computed here from the reference ODE."""
    # proportional (spec §5.3 step 7)
    ell = math.sqrt(6.0 * LAMBDA_P * SHTU / (GAMMA_SUM * SIGMA**2))
    beta_p = SIGMA * math.sqrt(2.0 * ell * SHTU)
    models = [
        {
            "label": "prop",
            "kind": "prop",
            "delta": beta_p / SIGMA,
            "ell": ell,
            "sd": ell / math.sqrt(3.0),
        }
    ]
    # quadratic (spec §5.4 step 11, Remark 3.6)
    lam2 = 2.0 * LAMBDA_P / (math.pi * SHTU)
    beta2 = SHTU * math.sqrt(math.pi * SIGMA) * (2.0 * lam2 / GAMMA_SUM) ** 0.25
    delta2 = beta2 / SIGMA
    k = SIGMA * math.sqrt(GAMMA_SUM / (2.0 * lam2))
    models.append(
        {"label": "q=2", "kind": "ou", "delta": delta2, "k": k, "sd": delta2 / math.sqrt(2 * k)}
    )
    # power (Appendix B)
    for q in (1.5, 1.1):
        sol = solve_power(q)
        lam, beta = match_power(sol)
        delta = beta / SIGMA
        c1 = rescaling_c1(q, lam, delta)
        models.append(
            {
                "label": f"q={q}",
                "kind": "power",
                "delta": delta,
                "c1": c1,
                "table": DriftTable(sol, delta, c1),
                "sd": math.sqrt(sol["v"]) / c1,
            }
        )
    return models


def run_sim(args):
    t_setup = time.perf_counter()
    models = calibrated_models()
    m_sub, n, days = args.substeps, args.paths, args.days
    h = 1.0 / m_sub
    sh = math.sqrt(h)
    for m in models:
        if m["kind"] == "prop":
            m["lim"] = m["ell"] - AGP_SHIFT * m["delta"] * sh
            m["noise"] = m["delta"] * sh
            m["scheme"] = "projected random walk + AGP shift"
            lo, hi = -m["ell"], m["ell"]
        elif m["kind"] == "ou":
            m["decay"] = math.exp(-m["k"] * h)
            m["noise"] = m["delta"] * math.sqrt((1.0 - math.exp(-2.0 * m["k"] * h)) / (2 * m["k"]))
            m["scheme"] = "exact OU"
            lo, hi = -5.0 * m["sd"], 5.0 * m["sd"]
        else:
            m["noise"] = m["delta"] * sh
            m["implicit"] = h * m["table"].max_slope(8.0) > 0.5
            m["scheme"] = "drift-implicit Euler" if m["implicit"] else "Euler-Maruyama"
            lo, hi = -5.0 * m["sd"], 5.0 * m["sd"]
        m["hist"] = np.zeros(args.hist_bins + 2, dtype=np.int64)  # [below, bins..., above]
        m["hist_lo"], m["hist_w"] = lo, (hi - lo) / args.hist_bins
        m["x"] = np.zeros(n)
        m["turn"] = np.zeros(n)
        m["mx"], m["mt"] = Moments(), Moments()
        m["ax"], m["at"] = LagSums(args.max_lag, n), LagSums(args.max_lag, n)

    rng = np.random.default_rng(args.seed)
    xi = np.empty((m_sub, n))
    setup_s = time.perf_counter() - t_setup
    t0, c0 = time.perf_counter(), time.process_time()
    for _day in range(days):
        rng.standard_normal(out=xi)
        for m in models:
            x, turn = m["x"], m["turn"]
            turn.fill(0.0)
            kind = m["kind"]
            for j in range(m_sub):
                z = xi[j]
                if kind == "prop":
                    xh = x + m["noise"] * z
                    lim = m["lim"]
                    turn += np.maximum(-lim - xh, 0.0) + np.maximum(xh - lim, 0.0)
                    np.clip(xh, -lim, lim, out=x)
                elif kind == "ou":
                    ax = np.abs(x)
                    x *= m["decay"]
                    x += m["noise"] * z
                    turn += 0.5 * m["k"] * h * (ax + np.abs(x))
                elif m["implicit"]:
                    xn = m["table"].implicit(x + m["noise"] * z, h)
                    r, _ = m["table"].eval(xn)
                    x[:] = xn
                    turn += np.abs(r) * h
                else:
                    r, _ = m["table"].eval(x)
                    x += r * h + m["noise"] * z
                    turn += np.abs(r) * h
            m["mx"].add(x)
            m["mt"].add(turn)
            m["ax"].add(x)
            m["at"].add(turn)
            b = np.floor((x - m["hist_lo"]) / m["hist_w"])
            b = np.clip(b, -1, args.hist_bins).astype(np.int64) + 1
            m["hist"] += np.bincount(b, minlength=args.hist_bins + 2)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0

    out = []
    for m in models:
        mt = m["mt"]
        ax, at = m["ax"].acf(), m["at"].acf()
        rec = {
            "label": m["label"],
            "scheme": m["scheme"],
            "delta": m["delta"],
            "mean_turnover": mt.mean(),
            "cv_turnover": mt.sd() / mt.mean(),
            "sd_x": m["mx"].sd(),
            "stationary_sd_x": m["sd"],
            "acf_x": {str(l): ax[l] for l in (1, 5, 20) if l <= args.max_lag},
            "acf_turnover": {str(l): at[l] for l in (1, 5, 20) if l <= args.max_lag},
        }
        for key in ("k", "c1", "ell"):
            if key in m:
                rec[key] = m[key]
        out.append(rec)
    return {
        "task": "sim",
        "impl": "python",
        "threads": 1,
        "paths": n,
        "days": days,
        "substeps": m_sub,
        "max_lag": args.max_lag,
        "hist_bins": args.hist_bins,
        "setup_s": setup_s,
        "time_s": elapsed,
        "cpu_s": cpu,
        "shtu": SHTU,
        "models": out,
        "numpy": np.__version__,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("ode")
    o.add_argument("--inner", type=int, default=1)
    s = sub.add_parser("sim")
    s.add_argument("--paths", type=int, default=10_000)
    s.add_argument("--substeps", type=int, default=10)
    s.add_argument("--days", type=int, default=2520)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--hist-bins", type=int, default=60)
    s.add_argument("--max-lag", type=int, default=40)
    args = ap.parse_args()
    res = run_ode(args) if args.cmd == "ode" else run_sim(args)
    json.dump(res, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

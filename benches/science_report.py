#!/usr/bin/env python3
"""Summarises the JSON files written by benches/science.sh into the printed tables.

Usage: science_report.py DIR (standard library only).
"""

import glob
import json
import os
import re
import statistics
import sys

# Reference values (spec §8 table and §9), relative tolerance 1e-8 for the accuracy check.
REF = {
    1.5: dict(
        c=1.77113319732,
        z=2.47695742917,
        v=0.759057084567,
        **{"lambda": 5.21420062996e-6},
        beta=2.33232898501e10,
    ),
    1.1: dict(
        c=1.4620519842,
        z=2.3789775504,
        v=0.5187926396,
        **{"lambda": 0.0323562598},
        beta=2.51388767e10,
    ),
    2.0: dict(c=2.0, z=2.5066282746310002, v=1.0, **{"lambda": 1.08e-10}, beta=2.19e10),
}
ACC_TOL = 1e-8
TURNOVER_TOL = 0.03  # "within a few %" of ShTu
GOAL_ODE, GOAL_SIM, GOAL_RSS_KIB = 20.0, 5.0, 1024 * 1024


def load(pattern):
    out = []
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            out.append(json.load(f))
    return out


def rel(a, b):
    return abs(a - b) / abs(b)


def fmt_s(t):
    return f"{t * 1e3:.1f} ms" if t < 1.0 else f"{t:.2f} s"


def timef(path):
    """The fields of one benches/lib.sh `timed` report: wall, user, sys (s), rss_kib; cpu = user+sys."""
    with open(path) as f:
        text = f.read()
    out = {k: float(v) for k, v in re.findall(r"(wall|user|sys|rss_kib)=([\d.]+)", text)}
    out["cpu"] = out["user"] + out["sys"]
    return out


def times(pattern):
    """timef() of every report matching pattern (sorted by name)."""
    return [timef(p) for p in sorted(glob.glob(pattern))]


def ratio(a, b):
    """a / b as '12.3x', or 'n/a' where b is not positive (a CPU time below the timer's 10 ms)."""
    return f"{a / b:.1f}x" if b > 0 else "n/a"


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "machine.txt")) as f:
        machine = dict(line.strip().split("=", 1) for line in f)
    ode_rs, ode_py = load(f"{d}/ode-rs-*.json"), load(f"{d}/ode-py-*.json")
    sim_rs, sim_py = load(f"{d}/sim-rs-*.json"), load(f"{d}/sim-py-*.json")
    paths = sim_rs[0]["paths"]

    # ---- timings: median per process (inner repetitions), then median over processes
    t_ode_rs = statistics.median(statistics.median(r["times_s"]) for r in ode_rs)
    t_ode_py = statistics.median(statistics.median(r["times_s"]) for r in ode_py)
    t_sim_rs = statistics.median(r["time_s"] for r in sim_rs)
    t_sim_py = statistics.median(r["time_s"] for r in sim_py)
    # ---- whole processes (benches/lib.sh `timed` reports), and CPU seconds of the timed work:
    # python measures it in-process (time.process_time); eqlab's is its process's user+sys over
    # its in-process ODE runs (a), or less the CPU time of a setup-only run (1 path, 2 days) (b).
    p_ode_rs, p_ode_py = times(f"{d}/ode-rs-*.time"), times(f"{d}/ode-py-*.time")
    p_sim_rs, p_sim_py = times(f"{d}/sim-rs-*.time"), times(f"{d}/sim-py-*.time")
    c_ode_rs = med([t["cpu"] / r["inner"] for t, r in zip(p_ode_rs, ode_rs)])
    c_ode_py = med([statistics.median(r["cpu_times_s"]) for r in ode_py])
    setup_cpu_rs = med([t["cpu"] for t in times(f"{d}/setup-rs-*.time")])
    c_sim_rs = med([t["cpu"] - setup_cpu_rs for t in p_sim_rs])
    # The same simulation on one thread (science.sh), for the per-CPU-second goal.
    c_sim1_rs = med([t["cpu"] - setup_cpu_rs for t in times(f"{d}/sim1-rs-*.time")])
    c_sim_py = med([r["cpu_s"] for r in sim_py])

    # ---- ODE accuracy
    def ode_errors(res):
        errs = {}
        for r in res["results"]:
            ref = REF[r["q"]]
            errs[r["q"]] = {k: rel(r[k], ref[k]) for k in ("c", "z", "v", "lambda", "beta")}
        return errs

    e_rs, e_py = ode_errors(ode_rs[-1]), ode_errors(ode_py[-1])
    acc_rs = max(e_rs[1.5][k] for k in "czv")
    acc_py = max(e_py[1.5][k] for k in "czv")

    # ---- simulation agreement
    shtu = sim_rs[0]["shtu"]
    dev_rs = {m["label"]: m["mean_turnover"] / shtu - 1.0 for m in sim_rs[0]["models"]}
    dev_py = {m["label"]: m["mean_turnover"] / shtu - 1.0 for m in sim_py[0]["models"]}
    worst = max(abs(v) for v in list(dev_rs.values()) + list(dev_py.values()))

    n_sub = sim_rs[0]["substeps"]
    days = sim_rs[0]["days"]
    print()
    print(
        f"load average (1/5/15 min): {machine['load_start']} at start, "
        f"{machine.get('load_end', '?')} at end; nproc={machine['nproc']}"
    )
    print(
        f"threads: eqlab ode 1 (serial), eqlab sim {sim_rs[0]['threads']} (rayon, all cores); "
        f"python 1 (CPython + numpy {sim_py[0].get('numpy', '?')}, elementwise kernels are "
        "single-threaded; scipy's solvers are serial)"
    )
    print(
        f"repetitions: {len(ode_rs)} interleaved (eqlab ode: {ode_rs[0]['inner']} in-process "
        "runs each, median taken); medians reported"
    )
    print()
    print(
        "timed work, medians (ratio = python / eqlab, above 1 means eqlab is faster; CPU = "
        "user+sys: python in-process, eqlab from its process, see benches/README.md):"
    )
    hdr = (
        f"{'task':<52} | {'eqlab wall':>10} {'python wall':>11} {'ratio':>7} | "
        f"{'eqlab CPU':>10} {'python CPU':>11} {'ratio':>7}"
    )
    print(hdr)
    print("-" * len(hdr))
    task_b = f"(b) sim {paths} paths x {days} d x 4 models, m={n_sub}"
    for task, tr, tp, cr, cp in (
        ("(a) ODE c_q,Z_q,V_q + (lambda_q,beta_q), q=1.1,1.5,2", t_ode_rs, t_ode_py, c_ode_rs, c_ode_py),
        (task_b, t_sim_rs, t_sim_py, c_sim_rs, c_sim_py),
    ):
        print(
            f"{task:<52} | {fmt_s(tr):>10} {fmt_s(tp):>11} {ratio(tp, tr):>7} | "
            f"{fmt_s(cr):>10} {fmt_s(cp):>11} {ratio(cp, cr):>7}"
        )
    print(
        f"accuracy: (a) q=1.5 max rel err c/Z/V: eqlab {acc_rs:.1e}, python {acc_py:.1e} "
        f"(tol {ACC_TOL:.0e}); (b) max |mean turnover / ShTu - 1| = {worst:.2%}"
    )
    print()
    print(
        "whole processes, medians (python: imports, and for (b) its setup with the scipy ODE "
        "solves; eqlab (a): ODE_INNER runs, (b): setup):"
    )
    hdr = (
        f"{'task':<8} | {'eqlab wall':>10} {'python wall':>11} {'ratio':>7} | "
        f"{'eqlab CPU':>10} {'python CPU':>11} {'ratio':>7} | {'eqlab RSS':>10} {'python RSS':>11}"
    )
    print(hdr)
    for task, pr, pp in (("(a) ode", p_ode_rs, p_ode_py), ("(b) sim", p_sim_rs, p_sim_py)):
        wr, wp = med([t["wall"] for t in pr]), med([t["wall"] for t in pp])
        cr, cp = med([t["cpu"] for t in pr]), med([t["cpu"] for t in pp])
        rr, rp = max(t["rss_kib"] for t in pr), max(t["rss_kib"] for t in pp)
        print(
            f"{task:<8} | {fmt_s(wr):>10} {fmt_s(wp):>11} {ratio(wp, wr):>7} | "
            f"{fmt_s(cr):>10} {fmt_s(cp):>11} {ratio(cp, cr):>7} | "
            f"{rr / 1024:>6.0f} MiB {rp / 1024:>7.0f} MiB"
        )
    print()

    print("(a) per q (median seconds):")
    for q in ("1.1", "1.5", "2.0"):
        trs = statistics.median(statistics.median(r["per_q_s"][q]) for r in ode_rs)
        tpy = statistics.median(statistics.median(r["per_q_s"][q]) for r in ode_py)
        print(
            f"    q={q:<4} eqlab {fmt_s(trs):>9}   python {fmt_s(tpy):>8}   ratio {tpy / trs:6.1f}x"
        )
    print("(a) accuracy, relative error against the spec's reference values (§8 table, §9):")
    print(
        f"    {'q':<4} {'quantity':<7} {'eqlab value':>22} {'eqlab err':>10} "
        f"{'python value':>22} {'python err':>10}"
    )
    for r_rs, r_py in zip(ode_rs[-1]["results"], ode_py[-1]["results"]):
        q = r_rs["q"]
        for k in ("c", "z", "v", "lambda", "beta"):
            print(
                f"    {q:<4} {k:<7} {r_rs[k]:>22.15g} {e_rs[q][k]:>10.1e} "
                f"{r_py[k]:>22.15g} {e_py[q][k]:>10.1e}"
            )
    print(
        "    (reference digits: q=1.5 c/Z/V 12 digits; q=1.1 10 digits; lambda/beta of q=1.1 "
        "and 1.5 are 9-12 digit published values)"
    )
    ok_acc = acc_rs <= ACC_TOL and acc_py <= ACC_TOL
    print()

    print(
        f"(b) per model ({paths} paths; ShTu = {shtu:.6e} shares/day; ACF of daily X and "
        "turnover at lag 1):"
    )
    print(
        f"    {'model':<6} {'scheme (both)':<36} {'eqlab turnover':>15} {'python':>9} "
        f"{'delta rel diff':>14} {'acf_x(1) e/p':>15} {'acf_tu(1) e/p':>15}"
    )
    for mr, mp in zip(sim_rs[0]["models"], sim_py[0]["models"]):
        assert mr["label"] == mp["label"] and mr["scheme"] == mp["scheme"], (mr, mp)
        print(
            f"    {mr['label']:<6} {mr['scheme']:<36} {dev_rs[mr['label']]:>+15.2%} "
            f"{dev_py[mp['label']]:>+9.2%} {rel(mr['delta'], mp['delta']):>14.1e} "
            f"{mr['acf_x']['1']:>7.4f}/{mp['acf_x']['1']:.4f} "
            f"{mr['acf_turnover']['1']:>7.4f}/{mp['acf_turnover']['1']:.4f}"
        )
    print()

    print(
        "(b) eqlab scaling in paths (medians; CPU = user+sys of the process less that of the "
        f"setup-only run, {fmt_s(setup_cpu_rs)}; less sensitive to other load than wall time):"
    )
    base = base_cpu = None
    for p in (paths // 4, paths // 2, paths):
        runs = sim_rs if p == paths else load(f"{d}/scale-{p}-*.json")
        t = statistics.median(r["time_s"] for r in runs)
        reports = times(f"{d}/sim-rs-*.time" if p == paths else f"{d}/scale-{p}-*.time")
        cpu = med([t["cpu"] for t in reports]) - setup_cpu_rs
        base = base or t / p
        base_cpu = base_cpu or cpu / p
        print(
            f"    {p:>6} paths: wall {t:7.2f} s ({t / p * 1e6:5.0f} us/path, "
            f"{t / (base * p):.2f}x linear)   CPU {cpu:7.2f} s ({ratio(cpu, base_cpu * p)} linear)"
        )
    rss_t = max((t["rss_kib"] for t in p_sim_rs), default=0)
    rss_v = max(r.get("vmhwm_kib") or 0 for r in sim_rs)
    rss = rss_t or rss_v
    src = "whole-process max RSS" if rss_t else "VmHWM"
    print(
        f"(b) eqlab peak RSS at {paths} paths: {rss / 1024:.1f} MiB ({src}; VmHWM "
        f"{rss_v / 1024:.1f} MiB)"
    )
    print()

    print("goals:")
    for name, ok, detail in (
        (
            "(a) eqlab >= 20x faster than scipy",
            t_ode_py / t_ode_rs >= GOAL_ODE,
            f"wall {t_ode_py / t_ode_rs:.1f}x (CPU {ratio(c_ode_py, c_ode_rs)})",
        ),
        (
            "(a) both reproduce c,Z,V(q=1.5) to <= 1e-8",
            ok_acc,
            f"eqlab {acc_rs:.1e}, python {acc_py:.1e}",
        ),
        (
            "(b) eqlab >= 5x faster than numpy per CPU-second (eqlab on one thread)",
            c_sim1_rs > 0 and c_sim_py / c_sim1_rs >= GOAL_SIM,
            f"one thread: CPU {ratio(c_sim_py, c_sim1_rs)} ({fmt_s(c_sim1_rs)}); all cores: wall "
            f"{t_sim_py / t_sim_rs:.1f}x, CPU {ratio(c_sim_py, c_sim_rs)}",
        ),
        ("(b) peak RSS < 1 GiB", rss < GOAL_RSS_KIB, f"{rss / 1024:.1f} MiB"),
        (
            f"(b) mean turnover within {TURNOVER_TOL:.0%} of ShTu",
            worst <= TURNOVER_TOL,
            f"worst {worst:.2%}",
        ),
    ):
        print(f"    [{'met ' if ok else 'MISS'}] {name}: {detail}")


if __name__ == "__main__":
    main()

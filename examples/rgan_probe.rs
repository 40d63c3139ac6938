//! Exploratory R-GAN runs: `rgan_probe key=value ...` (case=a|b|c, mu_known, link, steps, width,
//! depth, rounds, phase=300,300, lr=1e-3, batch, reinit, seed, test, device=cpu). Prints each phase's test
//! metrics and the elapsed time; used to design the `cpu` schedule of `pipelines/rgan.yaml`.

use eqlab::deep::rgan::{RganProblem, RganSchedule, increments, train_rgan};
use eqlab::deep::stream;
use eqlab::deep::train::Hooks;
use eqlab::finance::nagent::Economy;
use std::collections::HashMap;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: HashMap<String, String> = std::env::args()
        .skip(1)
        .filter_map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let get = |k: &str, d: &str| args.get(k).cloned().unwrap_or_else(|| d.to_string());
    let list = |k: &str, d: &str| -> Vec<f64> {
        get(k, d)
            .split(',')
            .filter_map(|v| v.parse().ok())
            .collect()
    };
    let mut economy = Economy::case_a();
    match get("case", "a").as_str() {
        "b" => {
            economy.gamma = vec![1.0, 2.0];
            economy.xi = vec![3.0, -3.0];
            economy.q = 1.5;
            economy.horizon = 0.4;
        }
        "c" => economy.q = 1.5,
        _ => {}
    }
    let p = RganProblem {
        economy,
        steps: get("steps", "100").parse()?,
        mu_known: get("mu_known", "false").parse()?,
        link: get("link", "true").parse()?,
        width: get("width", "50").parse()?,
        depth: get("depth", "3").parse()?,
    };
    let sched = RganSchedule {
        phase_steps: list("phase", "300").iter().map(|&v| v as usize).collect(),
        lr: list("lr", "1e-3"),
        rounds: get("rounds", "4").parse()?,
        reinit: get("reinit", "false").parse()?,
        batch: get("batch", "256").parse()?,
        terminal_ratio: get("kappa", "3000").parse()?,
    };
    let test = increments(&mut stream(7, 3), get("test", "1000").parse()?, &p);
    let t0 = Instant::now();
    let hooks = Hooks {
        progress: &|_, _| {},
        cancelled: &|| false,
    };
    let seed: u64 = get("seed", "1").parse()?;
    let dev = eqlab::deep::device::device_named(&get("device", "cpu"))?;
    let on_phase = |l: &eqlab::deep::rgan::PhaseLog| {
        let m = l.metrics;
        println!(
            "{:>3} {:<13} c {:.2e} loss {:>10.3e} → {:>10.3e} | J {:.4} clear {:.2e} term {:.2e} S0 {:.4} mu0 {:.4} sig0 {:.4} | {:.0} s",
            l.round,
            l.phase,
            l.terminal_weight,
            l.first_loss,
            l.last_loss,
            m.utility,
            m.clear,
            m.term,
            m.s0,
            m.mu0,
            m.sigma0,
            t0.elapsed().as_secs_f64()
        );
    };
    train_rgan(&p, &sched, seed, &test, &hooks, &on_phase, &dev)?;
    Ok(())
}

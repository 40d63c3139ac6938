//! Scratch driver for R-GAN schedules (not part of the product).
use eqlab::deep::rgan::{RganProblem, RganSchedule, increments, train_rgan};
use eqlab::deep::train::Hooks;
use eqlab::finance::nagent::Economy;
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: &str| a.get(i).cloned().unwrap_or(d.to_owned());
    let steps: usize = arg(1, "200").parse().unwrap();
    let rounds: usize = arg(2, "3").parse().unwrap();
    let batch: usize = arg(3, "256").parse().unwrap();
    let lr: f64 = arg(4, "1e-3").parse().unwrap();
    let width: usize = arg(5, "50").parse().unwrap();
    let p = RganProblem {
        economy: Economy::case_a(),
        steps: 100,
        mu_known: false,
        link: true,
        width,
        depth: 3,
    };
    let sched = RganSchedule {
        phase_steps: vec![steps],
        lr: vec![lr],
        rounds,
        reinit: false,
        batch,
    };
    let test = increments(&mut eqlab::deep::bsde::stream(0, 3), 3000, &p);
    let t0 = Instant::now();
    let hooks = Hooks {
        progress: &|_, _| {},
        cancelled: &|| false,
    };
    let r = train_rgan(&p, &sched, 1, &test, &hooks, &|l| {
        println!(
            "{:6.1}s round {} {:13} loss {:.3e}->{:.3e} | J {:.4} clear {:.2e} term {:.2e} S0 {:.4} mu0 {:.4} sigma0 {:.4}",
            t0.elapsed().as_secs_f64(),
            l.round,
            l.phase,
            l.first_loss,
            l.last_loss,
            l.metrics.utility,
            l.metrics.clear,
            l.metrics.term,
            l.metrics.s0,
            l.metrics.mu0,
            l.metrics.sigma0
        )
    });
    if let Err(e) = r {
        println!("error: {e}");
    }
}

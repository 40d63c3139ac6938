//! `make bench-rgan`, eqlab side: milliseconds per generator and per discriminator Adam step of
//! the Reinforced-GAN (case A: N = 10, K = 100, 3×50 tanh networks, μ learned, batch 1000, f64,
//! flex CPU backend), the same model and losses as `benches/rgan/bench_torch.py`.
//! Usage: `bench_rgan [steps] [batch]`.

use burn::module::Module;
use eqlab::deep::rgan::{Discriminator, Generator, RganProblem, increments, rollout};
use eqlab::deep::stream;
use eqlab::deep::train::{Hooks, Schedule, train};
use eqlab::finance::nagent::Economy;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (steps, batch) = (arg(1, 20), arg(2, 1000));
    let p = RganProblem {
        economy: Economy::case_a(),
        steps: 100,
        mu_known: false,
        link: true,
        width: 50,
        depth: 3,
    };
    // The device: EQLAB_DEVICE (cpu, tch-cpu, …; the README's "Devices"), cpu when unset.
    let dev = eqlab::deep::device::device_named(
        &std::env::var("EQLAB_DEVICE").unwrap_or_else(|_| "cpu".into()),
    )?;
    let hooks = Hooks {
        progress: &|_, _| {},
        cancelled: &|| false,
    };
    let schedule = |n| Schedule {
        steps: n,
        lr: 1e-3,
        lr_final: 1e-3,
        log_every: usize::MAX,
    };
    let mut rng = stream(1, 0);
    let (g, d) = (Generator::new(&p, 1, &dev), Discriminator::new(&p, 2, &dev));
    // Generator steps against the frozen market; a warm-up of 3 steps first.
    let frozen_d = d.clone().no_grad();
    let mut gen_steps = |n| {
        let t0 = Instant::now();
        train(
            g.clone(),
            &schedule(n),
            &hooks,
            |gm, _| rollout(gm, &frozen_d, &p, &increments(&mut rng, batch, &p), false).gen_loss,
            None,
        )
        .map(|_| t0.elapsed().as_secs_f64() * 1e3 / n as f64)
    };
    gen_steps(3)?;
    let g_ms = gen_steps(steps)?;
    let frozen_g = g.clone().no_grad();
    let mut rng = stream(1, 1);
    let mut disc = |n| {
        let t0 = Instant::now();
        train(
            d.clone(),
            &schedule(n),
            &hooks,
            |dm, _| {
                let r = rollout(&frozen_g, dm, &p, &increments(&mut rng, batch, &p), false);
                r.term.mul_scalar(1e3) + r.link + r.disc_reg
            },
            None,
        )
        .map(|_| t0.elapsed().as_secs_f64() * 1e3 / n as f64)
    };
    disc(3)?;
    let d_ms = disc(steps)?;
    println!("eqlab burn-flex: generator {g_ms:.1} ms/step, discriminator {d_ms:.1} ms/step");
    Ok(())
}

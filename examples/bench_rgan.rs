//! `make bench-rgan`, eqlab side: milliseconds per generator and per discriminator Adam step of
//! the Reinforced-GAN (case A: N = 10, K = 100, 3×50 tanh networks, μ learned, batch 1000, f64,
//! flex CPU backend), the same model and losses as `benches/rgan/bench_torch.py`.
//! Usage: `bench_rgan [steps] [batch]`.

use burn::module::Module;
use eqlab::deep::rgan::{
    Discriminator, Generator, RganProblem, discriminator_phase, generator_phase, increments,
};
use eqlab::deep::stream;
use eqlab::deep::train::{Hooks, Schedule};
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
    let dev_name = std::env::var("EQLAB_DEVICE").unwrap_or_else(|_| "cpu".into());
    let dev = eqlab::deep::device::device_named(&dev_name)?;
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
        generator_phase(
            g.clone(),
            &frozen_d,
            &p,
            &schedule(n),
            &hooks,
            |_| increments(&mut rng, batch, &p),
            None,
        )
        .map(|_| t0.elapsed().as_secs_f64() * 1e3 / n as f64)
    };
    gen_steps(3)?;
    let g_ms = gen_steps(steps)?;
    let frozen_g = g.clone().no_grad();
    let mut rng = stream(1, 1);
    // The terminal weight fixed at c = 1e3 (as in bench_torch.py), not measured.
    let mut disc = |n| {
        let t0 = Instant::now();
        let mut c = Some(1e3);
        discriminator_phase(
            d.clone(),
            &frozen_g,
            &p,
            &schedule(n),
            &hooks,
            Some(3000.0),
            &mut c,
            |_| increments(&mut rng, batch, &p),
            None,
        )
        .map(|_| t0.elapsed().as_secs_f64() * 1e3 / n as f64)
    };
    disc(3)?;
    let d_ms = disc(steps)?;
    println!(
        "eqlab {}: generator {g_ms:.1} ms/step, discriminator {d_ms:.1} ms/step",
        dev_name
    );
    Ok(())
}

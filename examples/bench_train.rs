//! `make bench-train`, eqlab side: milliseconds per Adam step of the endogenous-volatility deep
//! BSDE (q = 2, N = 40, batch 128, f64, flex CPU backend), the same network and rollout as
//! `benches/train/bench_torch.py`. Usage: `bench_train [steps] [width]`.

use eqlab::deep::bsde::{BsdeProblem, NetShape, TrainSettings, Variant, train_bsde};
use eqlab::deep::train::{Hooks, Schedule};
use eqlab::finance::calibration::Frictionless;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (steps, width) = (arg(1, 300), arg(2, 15));
    let problem = BsdeProblem {
        variant: Variant::Endogenous,
        fr: Frictionless::paper(),
        q: 2.0,
        lambda: 1.08e-10,
        beta: 2.19e10,
        horizon: 20.0,
        steps: 40,
        clip: 500.0,
    };
    let settings = |n| TrainSettings {
        shape: NetShape { width, hidden: 2 },
        batch: 128,
        valid_batch: 2,
        schedule: Schedule {
            steps: n,
            lr: 1e-3,
            lr_final: 1e-3,
            log_every: usize::MAX,
        },
    };
    let hooks = Hooks {
        progress: &|_, _| {},
        cancelled: &|| false,
    };
    // Warm-up (allocator, thread pool), then the timed run; both include model construction,
    // which is negligible against the steps.
    // The device: EQLAB_DEVICE (cpu, tch-cpu, …; the README's "Devices"), cpu when unset.
    let dev_name = std::env::var("EQLAB_DEVICE").unwrap_or_else(|_| "cpu".into());
    let dev = eqlab::deep::device::device_named(&dev_name)?;
    train_bsde(&problem, &settings(20), 1, &hooks, &dev)?;
    let t0 = Instant::now();
    let trained = train_bsde(&problem, &settings(steps), 1, &hooks, &dev)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3 / steps as f64;
    println!(
        "eqlab {dev_name}: {ms:.3} ms/step (loss {:.3e})",
        trained.log.loss.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

//! `generate`: a synthetic table (a seeded Gaussian random walk), optionally slow. It exercises
//! the engine (caching, parallelism, interruption) in tests and benchmarks without any data.

use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::TableBuilder;
use anyhow::Result;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// The `generate` stage kind.
pub struct Generate;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::opt("rows", K::Int, "100", "number of rows"),
    ParamSpec::opt("scale", K::Float, "1.0", "standard deviation of each step"),
    ParamSpec::opt(
        "offset",
        K::Float,
        "0.0",
        "added to every value (upstream `value` means are added too)",
    ),
    ParamSpec::opt(
        "sleep_ms",
        K::Int,
        "0",
        "milliseconds to spend, in 10 ms slices that honour Ctrl-C",
    ),
    ParamSpec::opt(
        "nan_at",
        K::Int,
        "-1",
        "row to set to NaN (to test the non-finite check); -1 for none",
    ),
];

/// The most rows `generate` makes (100 million: 2.4 GB of columns).
const MAX_ROWS: usize = 100_000_000;

impl Stage for Generate {
    fn kind(&self) -> &'static str {
        "generate"
    }
    fn version(&self) -> u32 {
        2
    }
    fn about(&self) -> &'static str {
        "synthetic random-walk table (for tests, benchmarks and demos)"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &["src/stages/generate.rs"]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        let rows = p
            .usize("rows")
            .map_err(|e| ParamError::new("rows", e.to_string()))?;
        if rows > MAX_ROWS {
            return Err(ParamError::new(
                "rows",
                format!("{rows} rows is more than the {MAX_ROWS} this synthetic stage makes"),
            ));
        }
        let scale = p
            .f64("scale")
            .map_err(|e| ParamError::new("scale", e.to_string()))?;
        if !(scale >= 0.0 && scale.is_finite()) {
            return Err(ParamError::new(
                "scale",
                format!("must be a finite number ≥ 0, got {scale}"),
            ));
        }
        Ok(())
    }
    fn run(&self, ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let rows = p.usize("rows")?;
        let sleep = p.usize("sleep_ms")?;
        ctx.progress.set_len((sleep / 10).max(1) as u64);
        for _ in 0..sleep / 10 {
            ctx.check_cancelled()?;
            std::thread::sleep(std::time::Duration::from_millis(10));
            ctx.progress.inc(1);
        }
        let mut offset = p.f64("offset")?;
        for (_, u) in &inputs.upstream {
            if let Some(m) = u.outputs.scalars.get("mean") {
                offset += m;
            }
        }
        let scale = p.f64("scale")?;
        let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
        let mut x = 0.0;
        let mut values = Vec::with_capacity(rows);
        for _ in 0..rows {
            let z: f64 = StandardNormal.sample(&mut rng);
            x += scale * z;
            values.push(x + offset);
        }
        if let Ok(i) = usize::try_from(p.get("nan_at")?.as_i64().unwrap_or(-1))
            && let Some(v) = values.get_mut(i)
        {
            *v = f64::NAN;
        }
        let mean = values.iter().sum::<f64>() / rows.max(1) as f64;
        let t = TableBuilder::new()
            .i64("i", (0..rows as i64).collect())
            .f64("value", values)
            .build()?;
        Ok(Outputs::new()
            .table("table", t)
            .scalar("mean", mean)
            .scalar("rows", rows as f64))
    }
}

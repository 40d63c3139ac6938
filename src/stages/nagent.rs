//! The benchmarks of the Reinforced-GAN paper (spec rgan §1.6) as stages: `nagent_riccati`, the
//! N-agent quadratic-cost ground truth (σ_t from the (H, F) Riccati system, S₀ by simulation
//! with the path-wise shift), and `leading_order`, the GMS leading-order equilibrium for two
//! agents (or the frictionless row, for case C). Both report the paper's table columns on test
//! paths, with the same names as `rgan_eval`. The `economy` parameter is shared with the R-GAN
//! stages.

use crate::deep::{brownian_increments, stream};
use crate::finance::nagent::{
    Economy, SigmaGrid, Simulation, continuous_discount, exact_discount, ground_truth_on,
    leading_order, simulate_frictionless, simulate_leading_order, simulate_truth,
};
use crate::finance::power::NormalisedPower;
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::TableBuilder;
use anyhow::{Result, anyhow};
use serde_json::Value;

/// The `nagent_riccati` stage kind.
pub struct NagentRiccati;

/// The `economy` parameter's documentation.
const ECONOMY_DOC: &str = "{gamma: [..], xi: [..], q, lambda?, alpha?, beta?, s?, horizon}";

/// The `economy` parameter (shared with the R-GAN stages).
pub const ECONOMY: ParamSpec = ParamSpec::req("economy", K::Any, ECONOMY_DOC);
/// The `steps` parameter: Euler steps K (shared with the R-GAN stages).
pub const STEPS: ParamSpec = ParamSpec::opt("steps", K::Int, "100", "Euler steps K");
/// The `test_paths` parameter (shared with `rgan_eval`).
pub const TEST_PATHS: ParamSpec = ParamSpec::opt(
    "test_paths",
    K::Int,
    "3000",
    "test paths (give the stages of one comparison the same `seed:` to share them)",
);

/// The `sigma_grid` parameter of `nagent_riccati`.
pub const SIGMA_GRID: ParamSpec = ParamSpec::added(
    "sigma_grid",
    K::Str,
    "aligned",
    "time of the Riccati solution step k uses: aligned (σ_k = c(T − t_k), σ₀ = c(T): S₀ 0.3611 in case A) or lagged (σ_k = c(T − t_{k+1}), one step late as in the authors' code: S₀ 0.3612)",
);

const PARAMS: &[ParamSpec] = &[ECONOMY, STEPS, TEST_PATHS, SIGMA_GRID];

/// Brownian increments of the test paths: stream 4 of the stage seed, as in `rgan_eval`.
pub fn test_increments(seed: u64, paths: usize, steps: usize, horizon: f64) -> Vec<f64> {
    brownian_increments(&mut stream(seed, 4), paths, steps, horizon / steps as f64)
}

/// The outputs every benchmark and evaluation shares: the paper's columns as scalars and the
/// `paths` table (σ_t, E μ_t, μ_t and the rates on path 0, and σ_t of a benchmark when known).
pub fn simulation_outputs(
    sim: &Simulation,
    e: &Economy,
    benchmark_sigma: Option<Vec<Option<f64>>>,
    test_paths: usize,
) -> Result<Outputs> {
    let steps = sim.sigma.len();
    let dt = e.horizon / steps as f64;
    let mut table = TableBuilder::new()
        .f64("t", (0..steps).map(|k| k as f64 * dt).collect())
        .f64("sigma", sim.sigma.clone());
    if let Some(b) = benchmark_sigma {
        table = table.opt_f64("benchmark_sigma", b);
    }
    table = table
        .f64("mean_mu", sim.mean_mu.clone())
        .f64("mu_path0", sim.mu_path.clone());
    for a in 0..e.agents() {
        table = table.f64(
            &format!("rate_{}_path0", a + 1),
            sim.rate_path.iter().map(|r| r[a]).collect(),
        );
    }
    let m = &sim.metrics;
    let s_bar0 = e.s_bar0();
    Ok(Outputs::new()
        .table("paths", table.build()?)
        .scalar("utility", m.utility)
        .scalar("utility_se", m.utility_se)
        .scalar("clearing", m.clear)
        .scalar("clearing_se", m.clear_se)
        .scalar("terminal", m.term)
        .scalar("terminal_se", m.term_se)
        .scalar("s0", m.s0)
        .scalar("mu0", m.mu0)
        .scalar("sigma0", m.sigma0)
        .scalar("s_bar0", s_bar0)
        // The liquidity discount S̄₀ − S₀, with the standard error of the mean of the path-wise
        // starting prices βT + αW_T − Σμ_kΔt − Σσ_kΔW_k (S₀'s own when S₀ is that mean; for a
        // learned or formula S₀ the resolution of the test paths), and the discount that mean
        // implies.
        .scalar("discount", s_bar0 - m.s0)
        .scalar("discount_se", sim.s0_se)
        .scalar("discount_paths", s_bar0 - sim.start_mean)
        .scalar("sigma_integral", sim.sigma.iter().sum::<f64>() * dt)
        .scalar("test_paths", test_paths as f64))
}

/// Parses an `economy:` mapping (defaults: α = 1, β = 2, s = 1, λ = 1e-2, spec rgan §5).
pub fn parse_economy(v: &Value) -> std::result::Result<Economy, String> {
    let obj = v.as_object().ok_or("must be a mapping")?;
    for k in obj.keys() {
        if ![
            "gamma", "xi", "q", "lambda", "alpha", "beta", "s", "horizon",
        ]
        .contains(&k.as_str())
        {
            return Err(format!(
                "unknown key `{k}` (expected gamma, xi, q, lambda, alpha, beta, s, horizon)"
            ));
        }
    }
    let list = |k: &str| -> std::result::Result<Vec<f64>, String> {
        obj.get(k)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("`{k}` must be a list of numbers"))?
            .iter()
            .map(|x| {
                x.as_f64()
                    .ok_or_else(|| format!("`{k}` must be a list of numbers"))
            })
            .collect()
    };
    let num = |k: &str, d: Option<f64>| -> std::result::Result<f64, String> {
        match obj.get(k) {
            Some(x) => x.as_f64().ok_or_else(|| format!("`{k}` must be a number")),
            None => d.ok_or_else(|| format!("`{k}` is required")),
        }
    };
    let e = Economy {
        gamma: list("gamma")?,
        xi: list("xi")?,
        q: num("q", None)?,
        lambda: num("lambda", Some(1e-2))?,
        alpha: num("alpha", Some(1.0))?,
        beta: num("beta", Some(2.0))?,
        s: num("s", Some(1.0))?,
        horizon: num("horizon", None)?,
    };
    e.validate(true).map_err(|e| e.to_string())?;
    Ok(e)
}

/// The validated `economy` parameter.
pub fn economy(p: &Params) -> Result<Economy> {
    parse_economy(p.get("economy")?).map_err(|e| anyhow!("economy: {e}"))
}

/// Checks the `economy` parameter (for `Stage::check`).
pub fn check_economy(p: &Params) -> std::result::Result<Economy, ParamError> {
    let v = p
        .get("economy")
        .map_err(|e| ParamError::new("economy", e.to_string()))?;
    parse_economy(v).map_err(|e| ParamError::new("economy", e))
}

impl Stage for NagentRiccati {
    fn kind(&self) -> &'static str {
        "nagent_riccati"
    }
    fn version(&self) -> u32 {
        4
    }
    fn about(&self) -> &'static str {
        "N-agent quadratic-cost equilibrium (Riccati ground truth): σ_t, μ_t, rates, S₀"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/nagent.rs",
            "src/finance/nagent.rs",
            "src/finance/ode.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        let e = check_economy(p)?;
        if e.q != 2.0 {
            return Err(ParamError::new(
                "economy",
                format!(
                    "the ground truth needs quadratic costs (q = 2), got q = {}",
                    e.q
                ),
            ));
        }
        sigma_grid(p)?;
        p.require_at_least(&[("steps", 2), ("test_paths", 2)])
    }
    fn run(&self, ctx: &StageCtx, p: &Params, _inputs: &Inputs) -> Result<Outputs> {
        let e = economy(p)?;
        let (steps, paths) = (p.usize("steps")?, p.usize("test_paths")?);
        let grid = sigma_grid(p).map_err(|e| anyhow!("{}: {}", e.param, e.message))?;
        let g = ground_truth_on(&e, steps, grid)?;
        ctx.check_cancelled()?;
        let sim = simulate_truth(&e, &g, &test_increments(ctx.seed, paths, steps, e.horizon));
        let exact = exact_discount(&e, &g);
        // The K → ∞ limit on a grid 20 times finer (at least 2000 steps), by Simpson's rule.
        let limit = continuous_discount(&e, (20 * steps).max(2000))?;
        Ok(simulation_outputs(&sim, &e, None, paths)?
            .scalar("s0_se", sim.s0_se)
            .scalar("discount_exact", exact)
            .scalar("s0_exact", e.s_bar0() - exact)
            .scalar("discount_limit", limit))
    }
}

/// The validated `sigma_grid` parameter.
fn sigma_grid(p: &Params) -> std::result::Result<SigmaGrid, ParamError> {
    let v = p
        .str("sigma_grid")
        .map_err(|e| ParamError::new("sigma_grid", e.to_string()))?;
    SigmaGrid::parse(v).ok_or_else(|| {
        ParamError::new(
            "sigma_grid",
            format!("must be aligned or lagged, got '{v}'"),
        )
    })
}

/// The `leading_order` stage kind.
pub struct LeadingOrder;

const LO_PARAMS: &[ParamSpec] = &[
    ECONOMY,
    STEPS,
    TEST_PATHS,
    ParamSpec::opt(
        "frictionless",
        K::Bool,
        "false",
        "the frictionless row instead (σ = α, μ = μ̄; any N; case C's only benchmark)",
    ),
];

impl Stage for LeadingOrder {
    fn kind(&self) -> &'static str {
        "leading_order"
    }
    fn version(&self) -> u32 {
        3
    }
    fn about(&self) -> &'static str {
        "GMS leading-order equilibrium (N = 2, power costs) or the frictionless row, simulated on test paths"
    }
    fn params(&self) -> &'static [ParamSpec] {
        LO_PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/nagent.rs",
            "src/finance/nagent.rs",
            "src/finance/power.rs",
            "src/finance/ode.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        let e = check_economy(p)?;
        let frictionless = p
            .bool("frictionless")
            .map_err(|err| ParamError::new("frictionless", err.to_string()))?;
        if !frictionless && e.agents() != 2 {
            return Err(ParamError::new(
                "economy",
                format!(
                    "the leading-order benchmark is for 2 agents, got {} (set frictionless: true for the λ = 0 row)",
                    e.agents()
                ),
            ));
        }
        p.require_at_least(&[("steps", 2), ("test_paths", 2)])
    }
    fn run(&self, ctx: &StageCtx, p: &Params, _inputs: &Inputs) -> Result<Outputs> {
        let e = economy(p)?;
        let (steps, paths) = (p.usize("steps")?, p.usize("test_paths")?);
        let dw = test_increments(ctx.seed, paths, steps, e.horizon);
        if p.bool("frictionless")? {
            let sim = simulate_frictionless(&e, steps, &dw);
            return simulation_outputs(&sim, &e, None, paths);
        }
        // g of the boundary-value problem is the normalised g̃ of ODE (B.2) (see the test in
        // finance::nagent), with its asymptote beyond the solved grid.
        let np = NormalisedPower::solve(e.q)?;
        let lo = leading_order(&e, -np.c)?;
        let sim = simulate_leading_order(&e, &lo, |x| np.g_tilde(x), steps, &dw);
        Ok(simulation_outputs(&sim, &e, None, paths)?.scalar("g_prime0", -np.c))
    }
}

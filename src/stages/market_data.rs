//! `market_data`: the empirical inputs of the calibration from a daily price/volume table (e.g.
//! the S&P 500 file loaded by `load_table`): absolute daily volatility σ of price changes, mean
//! daily price change, average price, mean daily volume (the turnover target), its ACF, and the
//! proportional cost as a fraction of the average price.

use crate::finance::stats::{acf, mean, sd};
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::{TableBuilder, f64_column, str_column};
use anyhow::{Result, bail};

/// The `market_data` stage kind.
pub struct MarketData;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::opt(
        "table",
        K::Str,
        "\"table\"",
        "upstream table with one row per trading day",
    ),
    ParamSpec::opt(
        "date_column",
        K::Str,
        "\"date\"",
        "date column (copied to the `series` table)",
    ),
    ParamSpec::opt("price_column", K::Str, "\"close\"", "price column"),
    ParamSpec::opt(
        "volume_column",
        K::Str,
        "\"volume\"",
        "daily share volume column",
    ),
    ParamSpec::opt(
        "acf_lags",
        K::Int,
        "60",
        "largest lag of the volume autocorrelation",
    ),
    ParamSpec::opt(
        "cost_fraction",
        K::Float,
        "0.0025",
        "proportional cost as a fraction of the average price",
    ),
    ParamSpec::opt(
        "shares_outstanding",
        K::Float,
        "2.46e11",
        "supply s passed on to the calibration",
    ),
];

impl Stage for MarketData {
    fn kind(&self) -> &'static str {
        "market_data"
    }
    fn version(&self) -> u32 {
        2
    }
    fn about(&self) -> &'static str {
        "σ, mean price change, average price, mean volume and volume ACF from daily data"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &["src/stages/market_data.rs", "src/finance/stats.rs"]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        p.require_positive(&["cost_fraction", "shares_outstanding"])
    }
    fn run(&self, _ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let t = inputs.table(p.str("table")?)?;
        let price = f64_column(t, p.str("price_column")?)?;
        let volume = f64_column(t, p.str("volume_column")?)?;
        let dates = str_column(t, p.str("date_column")?)?;
        if price.len() < 3 {
            bail!("need at least 3 trading days, got {}", price.len());
        }
        if let Some(i) = price.iter().chain(&volume).position(|v| !v.is_finite()) {
            bail!(
                "missing or non-finite price/volume in row {}",
                i % price.len() + 1
            );
        }
        let changes: Vec<f64> = price.windows(2).map(|w| w[1] - w[0]).collect();
        let avg_price = mean(&price);
        let sigma = sd(&changes);
        let lags = p.usize("acf_lags")?.min(volume.len() - 1);
        let vacf = acf(&volume, lags);
        let mut change_col = vec![f64::NAN];
        change_col.extend(&changes);
        let series = TableBuilder::new()
            .i64("day", (1..=price.len() as i64).collect())
            .str("date", &dates)
            .f64("price", price.clone())
            .opt_f64(
                "change",
                change_col
                    .iter()
                    .map(|c| c.is_finite().then_some(*c))
                    .collect(),
            )
            .f64("volume", volume.clone())
            .build()?;
        let acf_t = TableBuilder::new()
            .i64("lag", (0..vacf.len() as i64).collect())
            .f64("acf", vacf.clone())
            .build()?;
        let mut out = Outputs::new()
            .table("series", series)
            .table("volume_acf", acf_t)
            .scalar("n_days", price.len() as f64)
            .scalar("price", avg_price)
            .scalar("sigma", sigma)
            .scalar("mean_return", mean(&changes))
            .scalar("turnover", mean(&volume))
            .scalar("turnover_cv", sd(&volume) / mean(&volume))
            .scalar("lambda_p", p.f64("cost_fraction")? * avg_price)
            .scalar("shares_outstanding", p.f64("shares_outstanding")?);
        for lag in [1usize, 5, 20] {
            if let Some(v) = vacf.get(lag) {
                out = out.scalar(&format!("volume_acf_{lag}"), *v);
            }
        }
        Ok(out)
    }
}

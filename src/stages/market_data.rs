//! `market_data`: the empirical inputs of the calibration from a daily price/volume table (e.g.
//! the S&P 500 file loaded by `load_table`): absolute daily volatility σ of price changes, mean
//! daily price change, average price, mean daily volume (the turnover target), its ACF, and the
//! proportional cost as a fraction of the average price.
//!
//! The input must be what the finance assumes: strictly increasing dates, positive prices,
//! non-negative volumes, no missing values. Anything else is refused with the data file, line
//! and column of each bad value when the table came from `load_table` (see [`super::located`]).

use super::dates::iso;
use super::located::{Origin, cell, place};
use crate::finance::stats::{acf, mean, sd};
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::{Table, TableBuilder, column, f64_column, str_column};
use anyhow::{Result, bail};
use arrow::array::{Array, Date32Array};
use arrow::datatypes::DataType;
use std::collections::HashMap;

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
        3
    }
    fn about(&self) -> &'static str {
        "σ, mean price change, average price, mean volume and volume ACF from daily data"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/market_data.rs",
            "src/finance/stats.rs",
            "src/stages/located.rs",
            "src/stages/dates.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        p.require_positive(&["cost_fraction", "shares_outstanding"])
    }
    fn run(&self, _ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let name = p.str("table")?;
        let t = inputs.table(name)?;
        let origin = Origin::of(inputs, name, p);
        let o = origin.as_ref();
        let (price_col, volume_col) = (p.str("price_column")?, p.str("volume_column")?);
        let date_col = p.str("date_column")?;
        let price = numbers(t, name, price_col, o)?;
        let volume = numbers(t, name, volume_col, o)?;
        let dates = str_column(t, date_col)?;
        let mut problems = increasing_dates(t, name, date_col, o)?;
        for (r, x) in price.iter().enumerate() {
            if *x <= 0.0 {
                problems.push((
                    r,
                    format!("{}price {x} is not positive", cell(o, name, r, price_col)),
                ));
            }
        }
        for (r, x) in volume.iter().enumerate() {
            if *x < 0.0 {
                problems.push((
                    r,
                    format!("{}volume {x} is negative", cell(o, name, r, volume_col)),
                ));
            }
        }
        if !problems.is_empty() {
            problems.sort_by_key(|(r, _)| *r);
            let mut lines: Vec<String> = problems.iter().take(10).map(|(_, m)| m.clone()).collect();
            if problems.len() > 10 {
                let more = problems.len() - 10;
                lines.push(format!(
                    "… and {more} more problem{}",
                    if more == 1 { "" } else { "s" }
                ));
            }
            bail!("{}", lines.join("\n"));
        }
        if price.len() < 3 {
            bail!("need at least 3 trading days, got {}", price.len());
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

/// The values of a number column, refusing text, missing and non-finite values with their place.
fn numbers(t: &Table, table: &str, name: &str, o: Option<&Origin>) -> Result<Vec<f64>> {
    let col = column(t, name)?;
    if matches!(
        col.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        let text = str_column(t, name)?;
        let r = text
            .iter()
            .position(|v| v.trim().parse::<f64>().map_or(true, |x| !x.is_finite()))
            .unwrap_or(0);
        let value = text.get(r).map_or("", String::as_str);
        bail!(
            "{}'{value}' is not a number (the column is text)",
            cell(o, table, r, name)
        );
    }
    let values = f64_column(t, name)?;
    if let Some(r) = (0..col.len()).find(|&r| col.is_null(r)) {
        bail!("{}empty value", cell(o, table, r, name));
    }
    if let Some(r) = values.iter().position(|x| !x.is_finite()) {
        bail!(
            "{}{} is not a finite number",
            cell(o, table, r, name),
            values[r]
        );
    }
    Ok(values)
}

/// Every date of column `name` that is missing, repeats an earlier one or goes back in time,
/// as (row, message). The column must hold dates (`load_table` with `date_column`).
fn increasing_dates(
    t: &Table,
    table: &str,
    name: &str,
    o: Option<&Origin>,
) -> Result<Vec<(usize, String)>> {
    let col = column(t, name)?;
    let Some(days) = col.as_any().downcast_ref::<Date32Array>() else {
        bail!(
            "column '{name}' of table '{table}' holds {}, not dates: name it as `date_column` of the stage that loads the file, so that the dates are parsed and checked",
            col.data_type()
        );
    };
    let mut problems = Vec::new();
    let mut seen: HashMap<i32, usize> = HashMap::new();
    let mut prev: Option<(i32, usize)> = None;
    for (r, d) in days.iter().enumerate() {
        let Some(d) = d else {
            problems.push((r, format!("{}empty date", cell(o, table, r, name))));
            continue;
        };
        if let Some(first) = seen.get(&d) {
            problems.push((
                r,
                format!(
                    "{}date {} repeats {}",
                    cell(o, table, r, name),
                    iso(d),
                    place(o, *first)
                ),
            ));
        } else if let Some((p, pr)) = prev
            && d < p
        {
            problems.push((
                r,
                format!(
                    "{}date {} comes after {} ({}): dates must increase",
                    cell(o, table, r, name),
                    iso(d),
                    iso(p),
                    place(o, pr)
                ),
            ));
        }
        seen.entry(d).or_insert(r);
        prev = Some((d, r));
    }
    Ok(problems)
}

//! `describe`: per-column summary statistics of an upstream table (count, nulls, mean, standard
//! deviation, quantiles for numbers; first and last value for every column).

use crate::stage::{Inputs, Outputs, ParamKind as K, ParamSpec, Params, Stage, StageCtx};
use crate::table::{TableBuilder, f64_column};
use anyhow::Result;
use arrow::datatypes::DataType;

/// The `describe` stage kind.
pub struct Describe;

const PARAMS: &[ParamSpec] = &[ParamSpec::opt(
    "table",
    K::Str,
    "\"table\"",
    "name of the upstream table to describe",
)];

impl Stage for Describe {
    fn kind(&self) -> &'static str {
        "describe"
    }
    fn version(&self) -> u32 {
        // 2: src/table.rs (a source) gained the printing helpers; results are unchanged.
        2
    }
    fn about(&self) -> &'static str {
        "per-column summary statistics of an upstream table"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &["src/stages/describe.rs", "src/table.rs"]
    }
    fn run(&self, _ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let t = inputs.table(p.str("table")?)?;
        let opts = arrow::util::display::FormatOptions::default();
        let mut names = Vec::new();
        let mut types = Vec::new();
        let (mut count, mut nulls) = (Vec::new(), Vec::new());
        let mut stats: [Vec<Option<f64>>; 7] = Default::default();
        let (mut first, mut last) = (Vec::new(), Vec::new());
        let mut out = Outputs::new().scalar("rows", t.num_rows() as f64);
        for (field, col) in t.schema_ref().fields().iter().zip(t.columns()) {
            names.push(field.name().clone());
            types.push(field.data_type().to_string());
            count.push((col.len() - col.null_count()) as i64);
            nulls.push(col.null_count() as i64);
            let fmt = arrow::util::display::ArrayFormatter::try_new(col.as_ref(), &opts)?;
            first.push(if col.is_empty() {
                String::new()
            } else {
                fmt.value(0).to_string()
            });
            last.push(if col.is_empty() {
                String::new()
            } else {
                fmt.value(col.len() - 1).to_string()
            });
            let numeric = col.data_type().is_numeric()
                && !matches!(col.data_type(), DataType::Decimal128(..));
            let s = if numeric {
                summary(&f64_column(t, field.name())?)
            } else {
                None
            };
            for (i, slot) in stats.iter_mut().enumerate() {
                slot.push(s.map(|v| v[i]));
            }
            if let Some(v) = s {
                out = out
                    .scalar(&format!("{}.mean", field.name()), v[0])
                    .scalar(&format!("{}.std", field.name()), v[1]);
            }
        }
        let [mean, std, min, p25, median, p75, max] = stats;
        let table = TableBuilder::new()
            .str("column", &names)
            .str("type", &types)
            .i64("count", count)
            .i64("nulls", nulls)
            .opt_f64("mean", mean)
            .opt_f64("std", std)
            .opt_f64("min", min)
            .opt_f64("p25", p25)
            .opt_f64("median", median)
            .opt_f64("p75", p75)
            .opt_f64("max", max)
            .str("first", &first)
            .str("last", &last)
            .build()?;
        Ok(out.table("summary", table))
    }
}

/// [mean, sample std, min, p25, median, p75, max] of the finite values, `None` if there are none.
fn summary(values: &[f64]) -> Option<[f64; 7]> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let q = |p: f64| {
        let h = p * (n - 1.0);
        let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
        v[lo] + (h - lo as f64) * (v[hi] - v[lo])
    };
    Some([
        mean,
        var.sqrt(),
        v[0],
        q(0.25),
        q(0.5),
        q(0.75),
        v[v.len() - 1],
    ])
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn summary_matches_hand_values() {
        let s = summary(&[4.0, 1.0, 3.0, 2.0, f64::NAN]).unwrap();
        assert_eq!(s[0], 2.5);
        assert!((s[1] - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!([s[2], s[3], s[4], s[5], s[6]], [1.0, 1.75, 2.5, 3.25, 4.0]);
        assert!(summary(&[f64::NAN]).is_none());
    }
}

//! `load_table`: reads a CSV or Parquet file with polars, keeps the requested columns, renames
//! them, parses a date column and keeps a date window. The file's content is part of the key.

use super::frame::from_polars;
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use anyhow::{Context, Result, anyhow, bail};
use polars::prelude::*;
use std::path::Path;

/// The `load_table` stage kind.
pub struct LoadTable;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::req(
        "path",
        K::Path,
        "CSV or Parquet file, relative to the pipeline file",
    ),
    ParamSpec::opt(
        "format",
        K::Str,
        "\"auto\"",
        "auto (by extension), csv or parquet",
    ),
    ParamSpec::opt(
        "columns",
        K::StrList,
        "[]",
        "columns to keep, in this order (empty: all)",
    ),
    ParamSpec::opt(
        "rename",
        K::Any,
        "{}",
        "mapping old name → new name, applied after selection",
    ),
    ParamSpec::opt(
        "date_column",
        K::Str,
        "null",
        "column (after renaming) to parse as a date",
    ),
    ParamSpec::opt(
        "date_format",
        K::Str,
        "null",
        "strftime format of the dates; auto-detected when null",
    ),
    ParamSpec::opt(
        "start",
        K::Str,
        "null",
        "first date kept (YYYY-MM-DD, inclusive)",
    ),
    ParamSpec::opt(
        "end",
        K::Str,
        "null",
        "last date kept (YYYY-MM-DD, inclusive)",
    ),
];

/// Formats tried, in order, when `date_format` is null.
const DATE_FORMATS: &[&str] = &["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d"];

impl Stage for LoadTable {
    fn kind(&self) -> &'static str {
        "load_table"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "read a CSV/Parquet file (polars): select, rename, parse dates, keep a date window"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &["src/stages/load_table.rs", "src/stages/frame.rs"]
    }
    fn check(&self, p: &Params) -> std::result::Result<(), ParamError> {
        let e =
            |name: &'static str| move |err: anyhow::Error| ParamError::new(name, err.to_string());
        let format = p.str("format").map_err(e("format"))?;
        if !["auto", "csv", "parquet"].contains(&format) {
            return Err(ParamError::new(
                "format",
                format!("must be auto, csv or parquet, got '{format}'"),
            ));
        }
        if !p.get("rename").map_err(e("rename"))?.is_object() {
            return Err(ParamError::new(
                "rename",
                "must be a mapping old name → new name",
            ));
        }
        let mut bounds = Vec::new();
        for name in ["start", "end"] {
            if let Some(d) = p.opt_str(name).map_err(e(name))? {
                bounds.push(parse_iso_date(d).map_err(|m| ParamError::new(name, m))?);
                if p.opt_str("date_column").ok().flatten().is_none() {
                    return Err(ParamError::new(name, "a date window needs `date_column`"));
                }
            }
        }
        if let [a, b] = bounds[..]
            && a > b
        {
            return Err(ParamError::new(
                "end",
                "the date window is empty: `end` is before `start`",
            ));
        }
        Ok(())
    }
    fn run(&self, ctx: &StageCtx, p: &Params, _inputs: &Inputs) -> Result<Outputs> {
        let path = p.path("path")?;
        let mut df = read(&path, p.str("format")?)?;
        ctx.check_cancelled()?;
        let available: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let columns = p.str_list("columns")?;
        let missing: Vec<&String> = columns.iter().filter(|c| !available.contains(c)).collect();
        if !missing.is_empty() {
            bail!(
                "{}: no column(s) {} (the file has: {})",
                path.display(),
                missing
                    .iter()
                    .map(|c| format!("'{c}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                available.join(", ")
            );
        }
        if !columns.is_empty() {
            df = df.select(columns.iter().map(String::as_str))?;
        }
        if let Some(map) = p.get("rename")?.as_object() {
            for (old, new) in map {
                let new = new
                    .as_str()
                    .ok_or_else(|| anyhow!("rename: the new name of '{old}' must be a string"))?;
                let names = df
                    .get_column_names()
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                df.rename(old, new.into())
                    .map_err(|_| anyhow!("rename: no column '{old}' (columns: {names})"))?;
            }
        }
        if let Some(date_col) = p.opt_str("date_column")? {
            df = parse_dates(df, date_col, p.opt_str("date_format")?)?;
            let (start, end) = (p.opt_str("start")?, p.opt_str("end")?);
            if start.is_some() || end.is_some() {
                let covers = date_range(&df, date_col)?;
                let days = |d: Option<&str>, dflt: i32| -> Result<i32> {
                    Ok(d.map(parse_iso_date)
                        .transpose()
                        .map_err(|m| anyhow!(m))?
                        .unwrap_or(dflt))
                };
                let (a, b) = (days(start, i32::MIN)?, days(end, i32::MAX)?);
                df = df
                    .lazy()
                    .filter(
                        col(date_col)
                            .cast(DataType::Int32)
                            .gt_eq(lit(a))
                            .and(col(date_col).cast(DataType::Int32).lt_eq(lit(b))),
                    )
                    .collect()?;
                if df.height() == 0 {
                    bail!(
                        "no rows between {} and {} (the data covers {covers})",
                        start.unwrap_or("the beginning"),
                        end.unwrap_or("the end")
                    );
                }
            }
        }
        let rows = df.height();
        let table = from_polars(&mut df)?;
        Ok(Outputs::new()
            .table("table", table)
            .scalar("rows", rows as f64))
    }
}

fn read(path: &Path, format: &str) -> Result<DataFrame> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let parquet = match format {
        "parquet" => true,
        "csv" => false,
        _ => ext == "parquet" || ext == "pq",
    };
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let df = if parquet {
        ParquetReader::new(file).finish()
    } else {
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(10_000))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
    };
    anyhow::Context::with_context(df, || {
        format!(
            "cannot read {} as {}",
            path.display(),
            if parquet { "Parquet" } else { "CSV" }
        )
    })
}

/// Parses column `name` as dates, with `format` or the first of [`DATE_FORMATS`] that fits.
fn parse_dates(df: DataFrame, name: &str, format: Option<&str>) -> Result<DataFrame> {
    let column = df.column(name).map_err(|_| {
        anyhow!(
            "date_column: no column '{name}' (columns: {})",
            df.get_column_names()
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    if matches!(column.dtype(), DataType::Date) {
        return Ok(df);
    }
    let candidates: Vec<&str> = match format {
        Some(f) => vec![f],
        None => DATE_FORMATS.to_vec(),
    };
    let mut last_err = None;
    for f in &candidates {
        let opts = StrptimeOptions {
            format: Some((*f).into()),
            strict: true,
            exact: true,
            cache: true,
        };
        match df
            .clone()
            .lazy()
            .with_column(col(name).cast(DataType::String).str().to_date(opts))
            .collect()
        {
            Ok(out) => return Ok(out),
            Err(e) => last_err = Some(e),
        }
    }
    bail!(
        "column '{name}' does not parse as dates with {}: {}",
        candidates.join(" or "),
        last_err.map_or_else(String::new, |e| e.to_string())
    )
}

/// "first .. last" date of a date column, for error messages.
fn date_range(df: &DataFrame, name: &str) -> Result<String> {
    let s = df
        .column(name)?
        .as_materialized_series()
        .cast(&DataType::String)?;
    let ca = s.str()?;
    let first = ca.iter().flatten().next().unwrap_or("?").to_owned();
    let last = ca.iter().flatten().last().unwrap_or("?").to_owned();
    Ok(format!("{first} .. {last}"))
}

/// Days since 1970-01-01 of an ISO date `YYYY-MM-DD`.
pub fn parse_iso_date(s: &str) -> std::result::Result<i32, String> {
    let bad = || format!("'{s}' is not a date of the form YYYY-MM-DD");
    let parts: Vec<&str> = s.trim().split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Days from civil (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i32::try_from(era * 146_097 + doe - 719_468).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::parse_iso_date;

    #[test]
    fn iso_dates_convert_to_epoch_days() {
        assert_eq!(parse_iso_date("1970-01-01"), Ok(0));
        assert_eq!(parse_iso_date("2009-01-02"), Ok(14246));
        assert_eq!(parse_iso_date("2000-03-01"), Ok(11017));
        assert!(parse_iso_date("2009-13-01").is_err());
        assert!(parse_iso_date("01/02/2009").is_err());
    }
}

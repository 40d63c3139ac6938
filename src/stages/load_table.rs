//! `load_table`: reads a CSV or Parquet file, keeps and renames the requested columns, types each
//! column from *all* its values, parses a date column, checks that its dates strictly increase
//! and keeps a date window. Nothing is guessed silently: a cell that does not fit its column, an
//! empty cell, `NaN`, a date in another format than the other rows, day/month-ambiguous dates,
//! a repeated date — each is reported as `file:LINE: column 'Name': what is wrong`, with the
//! line counted in the file (the header is line 1), for every problem found (the first ten
//! shown). The file's content is part of the key. Next to `table` the stage writes `origin`,
//! the file line (or Parquet row) of every kept row, so later stages can locate bad values too.

mod csv;

use super::dates::{self, DateFormat};
use super::located::{ORIGIN_TABLE, Unit, at, display_path};
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::{Table, TableBuilder};
use anyhow::{Result, anyhow, bail};
use arrow::array::{
    Array, ArrayRef, Date32Array, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array,
    Int64Array, LargeStringArray, StringArray, StringViewArray, UInt8Array, UInt16Array,
    UInt32Array, UInt64Array,
};
use arrow::datatypes::DataType;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

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
        "auto (by extension: .parquet/.pq are Parquet, others CSV), csv or parquet",
    ),
    ParamSpec::opt(
        "delimiter",
        K::Str,
        "\",\"",
        "CSV field delimiter, one ASCII character (\";\", \"\\t\", ...)",
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
        "types",
        K::Any,
        "{}",
        "mapping column (as in the file) → integer, number or text; other CSV columns are typed from all their values",
    ),
    ParamSpec::opt(
        "allow_empty",
        K::Bool,
        "false",
        "read empty cells (outside the date column) as missing values instead of refusing them",
    ),
    ParamSpec::opt(
        "date_column",
        K::Str,
        "null",
        "column (after renaming) to parse as dates; its dates must strictly increase (see date_order)",
    ),
    ParamSpec::opt(
        "date_format",
        K::Str,
        "null",
        "format of the dates with %Y, %m, %d, %b (Jan), %B (January), e.g. \"%d/%m/%Y\"; null: the one of %Y-%m-%d, %m/%d/%Y, %d/%m/%Y, %d.%m.%Y, %Y/%m/%d, %Y%m%d that fits every date (day/month-ambiguous dates are refused)",
    ),
    ParamSpec::opt(
        "date_order",
        K::Str,
        "\"increasing\"",
        "increasing (each date after the one before: no repeats, no going back) or any",
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

/// The message for an empty cell outside the date column.
const EMPTY: &str = "empty value (set `allow_empty: true` to read empty cells as missing values)";

/// Problems listed in one error, at most; the rest are counted.
const MAX_SHOWN: usize = 10;

impl Stage for LoadTable {
    fn kind(&self) -> &'static str {
        "load_table"
    }
    fn version(&self) -> u32 {
        3
    }
    fn about(&self) -> &'static str {
        "read a CSV/Parquet file: select, rename, type and check columns, parse dates, keep a date window"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/load_table.rs",
            "src/stages/load_table/csv.rs",
            "src/stages/dates.rs",
            "src/stages/located.rs",
        ]
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
        delimiter(p.str("delimiter").map_err(e("delimiter"))?)
            .map_err(|m| ParamError::new("delimiter", m))?;
        let columns = p.str_list("columns").map_err(e("columns"))?;
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].contains(c) {
                return Err(ParamError::new("columns", format!("'{c}' is listed twice")));
            }
        }
        rename_map(p).map_err(|m| ParamError::new("rename", m))?;
        declared_types(p).map_err(|m| ParamError::new("types", m))?;
        let order = p.str("date_order").map_err(e("date_order"))?;
        if !["increasing", "any"].contains(&order) {
            return Err(ParamError::new(
                "date_order",
                format!("must be increasing or any, got '{order}'"),
            ));
        }
        let has_dates = p
            .opt_str("date_column")
            .map_err(e("date_column"))?
            .is_some();
        if let Some(f) = p.opt_str("date_format").map_err(e("date_format"))? {
            DateFormat::new(f).map_err(|m| ParamError::new("date_format", m))?;
            if !has_dates {
                return Err(ParamError::new(
                    "date_format",
                    "a date format needs `date_column`",
                ));
            }
        }
        let mut bounds = Vec::new();
        for name in ["start", "end"] {
            if let Some(d) = p.opt_str(name).map_err(e(name))? {
                bounds.push(dates::parse_iso_date(d).map_err(|m| ParamError::new(name, m))?);
                if !has_dates {
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
        let file = display_path(&path);
        let parquet = match p.str("format")? {
            "parquet" => true,
            "csv" => false,
            _ => path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq")),
        };
        let source = if parquet {
            read_parquet(&path, &file)?
        } else {
            read_csv(
                &path,
                &file,
                delimiter(p.str("delimiter")?).map_err(|m| anyhow!(m))?,
            )?
        };
        ctx.check_cancelled()?;
        let frame = Frame::build(source, p)?;
        frame.into_outputs(p)
    }
}

/// The delimiter parameter as one ASCII character (the CSV reader splits on a byte).
fn delimiter(s: &str) -> std::result::Result<char, String> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if !c.is_ascii() => Err(format!(
            "must be one character of the ASCII set (the CSV reader splits on a byte), got '{s}'"
        )),
        (Some(c), None) if c != '"' && c != '\n' && c != '\r' => Ok(c),
        _ => Err(format!(
            "must be one character other than a quote or a line break, got '{s}'"
        )),
    }
}

/// The `rename` mapping as (old, new) pairs.
fn rename_map(p: &Params) -> std::result::Result<Vec<(String, String)>, String> {
    let Some(map) = p.get("rename").map_err(|e| e.to_string())?.as_object() else {
        return Err("must be a mapping old name → new name".into());
    };
    map.iter()
        .map(|(old, new)| match new {
            Value::String(n) => Ok((old.clone(), n.clone())),
            _ => Err(format!("the new name of '{old}' must be a string")),
        })
        .collect()
}

/// How a column's values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Integer,
    Number,
    Text,
}

/// The `types` mapping: file column → declared type.
fn declared_types(p: &Params) -> std::result::Result<HashMap<String, Type>, String> {
    let Some(map) = p.get("types").map_err(|e| e.to_string())?.as_object() else {
        return Err("must be a mapping column → integer, number or text".into());
    };
    map.iter()
        .map(|(col, t)| match t.as_str() {
            Some("integer") => Ok((col.clone(), Type::Integer)),
            Some("number") => Ok((col.clone(), Type::Number)),
            Some("text") => Ok((col.clone(), Type::Text)),
            _ => Err(format!(
                "the type of '{col}' must be integer, number or text, got {t}"
            )),
        })
        .collect()
}

/// A column's values; `None` is a missing value.
#[derive(Debug, Clone)]
enum Values {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    /// Text as read; in a CSV file, untyped cells (empty cells are `None`).
    Text(Vec<Option<String>>),
    /// Days since 1970-01-01.
    Date(Vec<Option<i32>>),
}

/// What the file holds before selection: its column names, each column's values, and where each
/// row is in the file.
struct Source {
    file: String,
    unit: Unit,
    /// Line (CSV) or row (Parquet) of each data row.
    at: Vec<usize>,
    names: Vec<String>,
    /// Column values (for CSV, text to be typed), or the Arrow type of a column that
    /// load_table cannot read.
    columns: Vec<std::result::Result<Values, DataType>>,
}

fn read_bytes(path: &Path, file: &str) -> Result<Vec<u8>> {
    if path.is_dir() {
        bail!("{file}: is a directory, not a data file");
    }
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow!("{file}: no such file (paths are relative to the pipeline file)")
        }
        _ => anyhow!("{file}: cannot read it: {e}"),
    })
}

fn read_csv(path: &Path, file: &str, delimiter: char) -> Result<Source> {
    let bytes = read_bytes(path, file)?;
    let parsed = csv::read(&bytes, delimiter)
        .map_err(|e| anyhow!("{}{}", at(file, Unit::Line, e.line), e.message))?;
    let lines: Vec<usize> = parsed.records.iter().map(|r| r.line).collect();
    let mut columns: Vec<Vec<Option<String>>> =
        vec![Vec::with_capacity(lines.len()); parsed.header.len()];
    for r in parsed.records {
        for (c, f) in columns.iter_mut().zip(r.fields) {
            c.push((!f.trim().is_empty()).then_some(f));
        }
    }
    Ok(Source {
        file: file.to_owned(),
        unit: Unit::Line,
        at: lines,
        names: parsed.header,
        columns: columns.into_iter().map(|c| Ok(Values::Text(c))).collect(),
    })
}

fn read_parquet(path: &Path, file: &str) -> Result<Source> {
    let bytes = read_bytes(path, file)?;
    let table = crate::store::decode_parquet_from(bytes::Bytes::from(bytes))
        .map_err(|e| anyhow!("{file}: cannot read it as Parquet: {e}"))?;
    let names = table
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let columns = table.columns().iter().map(arrow_values).collect();
    Ok(Source {
        file: file.to_owned(),
        unit: Unit::Row,
        at: (1..=table.num_rows()).collect(),
        names,
        columns,
    })
}

/// An Arrow column as [`Values`]; `Err` carries its type when load_table cannot read it.
fn arrow_values(col: &ArrayRef) -> std::result::Result<Values, DataType> {
    let any = col.as_any();
    macro_rules! ints {
        ($t:ty) => {
            if let Some(a) = any.downcast_ref::<$t>() {
                return Ok(Values::Int(
                    a.iter()
                        .map(|v| v.and_then(|x| i64::try_from(x).ok()))
                        .collect(),
                ));
            }
        };
    }
    ints!(Int64Array);
    ints!(Int32Array);
    ints!(Int16Array);
    ints!(Int8Array);
    ints!(UInt32Array);
    ints!(UInt16Array);
    ints!(UInt8Array);
    if let Some(a) = any.downcast_ref::<UInt64Array>() {
        // Unsigned values beyond the range of i64 make the column a number column.
        return Ok(if a.iter().flatten().all(|x| i64::try_from(x).is_ok()) {
            Values::Int(
                a.iter()
                    .map(|v| v.and_then(|x| i64::try_from(x).ok()))
                    .collect(),
            )
        } else {
            Values::Float(a.iter().map(|v| v.map(|x| x as f64)).collect())
        });
    }
    if let Some(a) = any.downcast_ref::<Float64Array>() {
        return Ok(Values::Float(a.iter().collect()));
    }
    if let Some(a) = any.downcast_ref::<Float32Array>() {
        return Ok(Values::Float(a.iter().map(|v| v.map(f64::from)).collect()));
    }
    if let Some(a) = any.downcast_ref::<Date32Array>() {
        return Ok(Values::Date(a.iter().collect()));
    }
    let text = |it: &mut dyn Iterator<Item = Option<&str>>| {
        Values::Text(it.map(|v| v.map(str::to_owned)).collect())
    };
    if let Some(a) = any.downcast_ref::<StringArray>() {
        return Ok(text(&mut a.iter()));
    }
    if let Some(a) = any.downcast_ref::<LargeStringArray>() {
        return Ok(text(&mut a.iter()));
    }
    if let Some(a) = any.downcast_ref::<StringViewArray>() {
        return Ok(text(&mut a.iter()));
    }
    Err(col.data_type().clone())
}

/// One problem with one cell: where it is (line or row), the column as named in the file, what.
struct Problem {
    n: usize,
    column: String,
    message: String,
}

/// The kept columns, typed and checked.
struct Frame {
    file: String,
    unit: Unit,
    at: Vec<usize>,
    /// (name in the file, name in the table, values).
    columns: Vec<(String, String, Values)>,
    /// Index of the date column.
    date: Option<usize>,
}

impl Frame {
    /// Selects, renames, types and checks the columns of `source` as `p` asks.
    fn build(source: Source, p: &Params) -> Result<Frame> {
        let Source {
            file,
            unit,
            at,
            names,
            columns,
        } = source;
        let header_at = |msg: String| match unit {
            Unit::Line => anyhow!("{}{msg}", self::at(&file, unit, 1)),
            Unit::Row => anyhow!("{file}: {msg}"),
        };
        let wanted = p.str_list("columns")?;
        let keep: Vec<String> = if wanted.is_empty() {
            names.clone()
        } else {
            wanted
        };
        let quoted = |v: &[String]| {
            v.iter()
                .map(|c| format!("'{c}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let missing: Vec<String> = keep
            .iter()
            .filter(|c| !names.contains(c))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(header_at(format!(
                "no column(s) {} (the file has: {})",
                quoted(&missing),
                quoted(&names)
            )));
        }
        let mut columns: Vec<Option<_>> = columns.into_iter().map(Some).collect();
        let renames = rename_map(p).map_err(|m| anyhow!("rename: {m}"))?;
        for (old, _) in &renames {
            if !keep.contains(old) {
                bail!(
                    "rename: no column '{old}' among those kept ({})",
                    quoted(&keep)
                );
            }
        }
        let mut kept = Vec::new();
        for name in &keep {
            let idx: Vec<usize> = (0..names.len()).filter(|&i| &names[i] == name).collect();
            if name.trim().is_empty() {
                return Err(header_at(format!(
                    "column {} of the header has no name; list the columns to keep in `columns`",
                    idx[0] + 1
                )));
            }
            if idx.len() > 1 {
                return Err(header_at(format!(
                    "the header names {} columns '{name}' (columns {}); list the columns to keep in `columns`, or rename one in the file",
                    idx.len(),
                    idx.iter()
                        .map(|i| (i + 1).to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let new = renames
                .iter()
                .find(|(old, _)| old == name)
                .map_or(name.clone(), |(_, new)| new.clone());
            if kept
                .iter()
                .any(|(_, n, _): &(String, String, Values)| *n == new)
            {
                bail!("rename: two columns would be called '{new}'");
            }
            let values = columns[idx[0]]
                .take()
                .ok_or_else(|| anyhow!("column '{name}' kept twice"))?
                .map_err(|t| {
                    anyhow!("{file}: column '{name}' has type {t}, which load_table does not read")
                })?;
            kept.push((name.clone(), new, values));
        }
        let date_col = p.opt_str("date_column")?;
        let date = match date_col {
            None => None,
            Some(d) => Some(kept.iter().position(|(_, n, _)| n == d).ok_or_else(|| {
                anyhow!(
                    "date_column: no column '{d}' (columns: {})",
                    kept.iter()
                        .map(|(_, n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?),
        };
        let types = declared_types(p).map_err(|m| anyhow!("types: {m}"))?;
        for name in types.keys() {
            if !keep.contains(name) {
                bail!(
                    "types: no column '{name}' among those kept ({})",
                    quoted(&keep)
                );
            }
        }
        let allow_empty = p.bool("allow_empty")?;
        let mut problems = Vec::new();
        let mut frame = Frame {
            file,
            unit,
            at,
            columns: Vec::new(),
            date,
        };
        for (i, (name, new, values)) in kept.into_iter().enumerate() {
            let mut report = |row: usize, message: String| {
                problems.push(Problem {
                    n: frame.at.get(row).copied().unwrap_or(0),
                    column: name.clone(),
                    message,
                })
            };
            let values = if Some(i) == date {
                let format = p.opt_str("date_format")?.map(DateFormat::new).transpose();
                let format = format.map_err(|m| anyhow!("date_format: {m}"))?;
                let values = read_date_column(values, format.as_ref(), &mut report);
                if p.str("date_order")? == "increasing" {
                    check_increasing(&values, &frame.at, &mut report);
                }
                values
            } else {
                let infer = unit == Unit::Line;
                type_column(
                    values,
                    types.get(&name).copied(),
                    infer,
                    allow_empty,
                    &mut report,
                )
            };
            frame.columns.push((name, new, values));
        }
        if !problems.is_empty() {
            bail!("{}", frame.describe(problems));
        }
        Ok(frame)
    }

    /// One line per problem, in file order, the first [`MAX_SHOWN`] of them.
    fn describe(&self, mut problems: Vec<Problem>) -> String {
        problems.sort_by_key(|p| p.n);
        let mut lines: Vec<String> = problems
            .iter()
            .take(MAX_SHOWN)
            .map(|p| {
                format!(
                    "{}column '{}': {}",
                    at(&self.file, self.unit, p.n),
                    p.column,
                    p.message
                )
            })
            .collect();
        if problems.len() > MAX_SHOWN {
            let more = problems.len() - MAX_SHOWN;
            lines.push(format!(
                "… and {more} more problem{} in {}",
                if more == 1 { "" } else { "s" },
                self.file
            ));
        }
        lines.join("\n")
    }

    /// Keeps the date window and builds the `table` and `origin` outputs.
    fn into_outputs(self, p: &Params) -> Result<Outputs> {
        let mut keep: Vec<bool> = vec![true; self.at.len()];
        let (start, end) = (p.opt_str("start")?, p.opt_str("end")?);
        if let Some(d) = self.date
            && (start.is_some() || end.is_some())
            && let Values::Date(days) = &self.columns[d].2
        {
            let bound = |s: Option<&str>, dflt: i32| -> Result<i32> {
                s.map(dates::parse_iso_date)
                    .transpose()
                    .map_err(|m| anyhow!(m))
                    .map(|v| v.unwrap_or(dflt))
            };
            let (a, b) = (bound(start, i32::MIN)?, bound(end, i32::MAX)?);
            for (k, day) in keep.iter_mut().zip(days) {
                *k = day.is_some_and(|x| a <= x && x <= b);
            }
            if !keep.contains(&true) {
                let known = days.iter().flatten();
                let covers = match (known.clone().min(), known.max()) {
                    (Some(lo), Some(hi)) => format!("{} .. {}", dates::iso(*lo), dates::iso(*hi)),
                    _ => "no dates".into(),
                };
                bail!(
                    "no rows between {} and {} (the data covers {covers})",
                    start.unwrap_or("the beginning"),
                    end.unwrap_or("the end")
                );
            }
        }
        fn pick<T: Clone>(v: &[T], keep: &[bool]) -> Vec<T> {
            v.iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| x.clone())
                .collect()
        }
        let mut table = TableBuilder::new();
        for (_, name, values) in &self.columns {
            let array: ArrayRef = match values {
                Values::Int(v) => Arc::new(Int64Array::from(pick(v, &keep))),
                Values::Float(v) => Arc::new(Float64Array::from(pick(v, &keep))),
                Values::Text(v) => Arc::new(StringArray::from(pick(v, &keep))),
                Values::Date(v) => Arc::new(Date32Array::from(pick(v, &keep))),
            };
            table = table.column(name, array);
        }
        let table: Table = table.build()?;
        let at: Vec<i64> = pick(&self.at, &keep)
            .into_iter()
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
            .collect();
        let rows = table.num_rows();
        let origin = TableBuilder::new().i64(self.unit.column(), at).build()?;
        Ok(Outputs::new()
            .table("table", table)
            .table(ORIGIN_TABLE, origin)
            .scalar("rows", rows as f64))
    }
}

/// What one CSV cell holds.
enum Cell<'a> {
    Empty,
    Int(i64),
    Float(f64),
    /// `NaN`, `inf`, `-Infinity`, ...
    NonFinite(&'a str),
    /// A number beyond the range of f64, such as `1e400`.
    Huge(&'a str),
    Text(&'a str),
}

fn classify(cell: Option<&str>) -> Cell<'_> {
    let Some(t) = cell.map(str::trim).filter(|t| !t.is_empty()) else {
        return Cell::Empty;
    };
    if let Ok(i) = t.parse::<i64>() {
        return Cell::Int(i);
    }
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() => Cell::Float(x),
        Ok(_)
            if t.trim_start_matches(['+', '-'])
                .starts_with(|c: char| c.is_ascii_alphabetic()) =>
        {
            Cell::NonFinite(t)
        }
        Ok(_) => Cell::Huge(t),
        Err(_) => Cell::Text(t),
    }
}

/// Types one column and reports its bad cells. CSV text (`infer`) is typed from all its values
/// unless `declared`: numbers if most values are numbers (then every other value is a problem),
/// integers if they all are, text otherwise.
fn type_column(
    values: Values,
    declared: Option<Type>,
    infer: bool,
    allow_empty: bool,
    report: &mut dyn FnMut(usize, String),
) -> Values {
    let empty = |report: &mut dyn FnMut(usize, String), row: usize| {
        if !allow_empty {
            report(row, EMPTY.into());
        }
    };
    let cells = match values {
        Values::Text(cells) if infer || declared.is_some_and(|t| t != Type::Text) => cells,
        Values::Text(cells) => {
            for r in (0..cells.len()).filter(|&r| cells[r].is_none()) {
                empty(report, r);
            }
            return Values::Text(cells);
        }
        Values::Float(v) => {
            for (r, x) in v.iter().enumerate() {
                match x {
                    None => empty(report, r),
                    Some(x) if !x.is_finite() => report(r, format!("{x} is not a finite number")),
                    Some(_) => {}
                }
            }
            return Values::Float(v);
        }
        Values::Int(v) => {
            for r in (0..v.len()).filter(|&r| v[r].is_none()) {
                empty(report, r);
            }
            return Values::Int(v);
        }
        Values::Date(v) => {
            for r in (0..v.len()).filter(|&r| v[r].is_none()) {
                empty(report, r);
            }
            return Values::Date(v);
        }
    };
    let kinds: Vec<Cell> = cells.iter().map(|c| classify(c.as_deref())).collect();
    let numbers = kinds
        .iter()
        .filter(|k| !matches!(k, Cell::Empty | Cell::Text(_)))
        .count();
    let texts = kinds.iter().filter(|k| matches!(k, Cell::Text(_))).count();
    let fractional = kinds
        .iter()
        .any(|k| matches!(k, Cell::Float(_) | Cell::NonFinite(_) | Cell::Huge(_)));
    let ty = declared.unwrap_or(if numbers == 0 || numbers <= texts {
        Type::Text
    } else if fractional {
        Type::Number
    } else {
        Type::Integer
    });
    let not_a_number = |t: &str| match declared {
        Some(d) => format!(
            "'{t}' is not {} (`types` declares the column {})",
            if d == Type::Integer {
                "an integer"
            } else {
                "a number"
            },
            if d == Type::Integer {
                "integer"
            } else {
                "number"
            },
        ),
        None => format!(
            "'{t}' is not a number ({numbers} of the column's {} values are; to read the column as text, declare it in `types`)",
            cells.len()
        ),
    };
    match ty {
        Type::Text => {
            for r in (0..cells.len()).filter(|&r| cells[r].is_none()) {
                empty(report, r);
            }
            Values::Text(cells)
        }
        Type::Integer => Values::Int(
            kinds
                .iter()
                .enumerate()
                .map(|(r, k)| match k {
                    Cell::Int(i) => Some(*i),
                    Cell::Empty => {
                        empty(report, r);
                        None
                    }
                    Cell::Float(_) | Cell::NonFinite(_) | Cell::Huge(_) | Cell::Text(_) => {
                        let t = cells[r].as_deref().unwrap_or("").trim();
                        report(r, not_a_number(t));
                        None
                    }
                })
                .collect(),
        ),
        Type::Number => Values::Float(
            kinds
                .iter()
                .enumerate()
                .map(|(r, k)| match k {
                    Cell::Int(i) => Some(*i as f64),
                    Cell::Float(x) => Some(*x),
                    Cell::Empty => {
                        empty(report, r);
                        None
                    }
                    Cell::NonFinite(t) => {
                        report(r, format!("'{t}' is not a finite number"));
                        None
                    }
                    Cell::Huge(t) => {
                        report(r, format!("'{t}' is too large for a 64-bit number"));
                        None
                    }
                    Cell::Text(t) => {
                        report(r, not_a_number(t));
                        None
                    }
                })
                .collect(),
        ),
    }
}

/// Parses a date column (text, or dates already) and reports empty and unreadable cells.
fn read_date_column(
    values: Values,
    format: Option<&DateFormat>,
    report: &mut dyn FnMut(usize, String),
) -> Values {
    let cells: Vec<Option<String>> = match values {
        Values::Date(v) => {
            (0..v.len())
                .filter(|&r| v[r].is_none())
                .for_each(|r| report(r, "empty date".into()));
            return Values::Date(v);
        }
        Values::Text(v) => v,
        Values::Int(v) => v.into_iter().map(|x| x.map(|x| x.to_string())).collect(),
        Values::Float(v) => v.into_iter().map(|x| x.map(|x| x.to_string())).collect(),
    };
    let mut rows = Vec::new();
    let mut texts = Vec::new();
    for (r, c) in cells.iter().enumerate() {
        match c {
            Some(t) => {
                rows.push(r);
                texts.push(t.trim());
            }
            None => report(r, "empty date".into()),
        }
    }
    let mut days = vec![None; cells.len()];
    match dates::read_dates(&texts, format) {
        Ok(parsed) => {
            for (r, d) in rows.into_iter().zip(parsed) {
                days[r] = Some(d);
            }
        }
        Err(e) => report(rows.get(e.index).copied().unwrap_or(0), e.message),
    }
    Values::Date(days)
}

/// Reports every date that repeats an earlier one or comes before the one above it.
fn check_increasing(values: &Values, at: &[usize], report: &mut dyn FnMut(usize, String)) {
    let Values::Date(days) = values else { return };
    let known: Vec<i32> = days.iter().flatten().copied().collect();
    if known.len() > 2 && known.windows(2).all(|w| w[1] < w[0]) {
        let line = |r: usize| at.get(r).copied().unwrap_or(0);
        report(
            1,
            format!(
                "the dates decrease from {} (line {}) to {} (line {}): the file lists the newest day first; sort it oldest first (or set `date_order: any`)",
                dates::iso(known[0]),
                line(0),
                dates::iso(known[known.len() - 1]),
                line(days.len() - 1)
            ),
        );
        return;
    }
    let mut seen: HashMap<i32, usize> = HashMap::new();
    let mut prev: Option<(i32, usize)> = None;
    for (r, d) in days.iter().enumerate() {
        let Some(d) = *d else { continue };
        let here = at.get(r).copied().unwrap_or(0);
        if let Some(first) = seen.get(&d) {
            report(r, format!("date {} repeats line {first}", dates::iso(d)));
        } else if let Some((p, line)) = prev
            && d < p
        {
            report(
                r,
                format!(
                    "date {} comes after {} (line {line}): dates must increase (set `date_order: any` to allow any order)",
                    dates::iso(d),
                    dates::iso(p)
                ),
            );
        }
        seen.entry(d).or_insert(here);
        prev = Some((d, here));
    }
}

#[cfg(test)]
mod tests {
    use super::{Cell, classify};

    #[test]
    fn cells_are_classified_by_their_text() {
        assert!(matches!(classify(Some(" 42 ")), Cell::Int(42)));
        assert!(matches!(classify(Some("100.5")), Cell::Float(x) if x == 100.5));
        assert!(matches!(classify(Some("1e3")), Cell::Float(x) if x == 1000.0));
        assert!(matches!(classify(Some("NaN")), Cell::NonFinite(_)));
        assert!(matches!(classify(Some("-inf")), Cell::NonFinite(_)));
        assert!(matches!(classify(Some("1e400")), Cell::Huge(_)));
        assert!(matches!(classify(Some("n/a")), Cell::Text("n/a")));
        assert!(matches!(classify(Some("  ")), Cell::Empty));
        assert!(matches!(classify(None), Cell::Empty));
    }
}

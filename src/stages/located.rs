//! Where the rows of an upstream table came from, so that a stage which finds a bad value (a
//! zero price, a negative volume) can name the data file, its line and its column instead of a
//! row index. `load_table` records, next to its `table`, an `origin` table holding the file line
//! (CSV) or file row (Parquet) of every row it kept; [`Origin::of`] reads it back together with
//! the file path and the column renames of that stage.

use crate::stage::{Inputs, Params};
use crate::table::Table;
use arrow::array::{Array, Int64Array};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The name of the table in which `load_table` records where each kept row came from.
pub const ORIGIN_TABLE: &str = "origin";

/// How rows are counted in a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// 1-based file line, the header being line 1 (CSV).
    Line,
    /// 1-based row of the file's data (Parquet).
    Row,
}

impl Unit {
    /// The column name of the origin table that holds this unit.
    pub fn column(self) -> &'static str {
        match self {
            Unit::Line => "line",
            Unit::Row => "row",
        }
    }
}

/// A data file's path as shown in messages (without a leading `./`).
pub fn display_path(path: &Path) -> String {
    path.strip_prefix(".").unwrap_or(path).display().to_string()
}

/// `file:LINE: ` or `file: row N: `, the prefix of a message about one place in a data file.
pub fn at(file: &str, unit: Unit, n: usize) -> String {
    match unit {
        Unit::Line => format!("{file}:{n}: "),
        Unit::Row => format!("{file}: row {n}: "),
    }
}

/// Where the rows of one upstream table came from.
#[derive(Debug, Clone)]
pub struct Origin {
    file: String,
    unit: Unit,
    at: Vec<usize>,
    /// Table column name → column name in the file (the inverse of `rename`).
    file_names: BTreeMap<String, String>,
}

impl Origin {
    /// The origin of upstream table `table`, when it was loaded by `load_table` (which records
    /// one); `None` for tables computed by other stages. `params` resolves the upstream path as
    /// the upstream stage did (both belong to the same pipeline file).
    pub fn of(inputs: &Inputs, table: &str, params: &Params) -> Option<Origin> {
        let mut producers = inputs
            .upstream
            .iter()
            .filter(|(_, u)| u.outputs.tables.contains_key(table));
        let (_, up) = producers.next()?;
        if producers.next().is_some() || up.kind != "load_table" || table != "table" {
            return None;
        }
        let origin: &Table = up.outputs.tables.get(ORIGIN_TABLE)?;
        let (unit, col) = [Unit::Line, Unit::Row]
            .into_iter()
            .find_map(|u| origin.column_by_name(u.column()).map(|c| (u, c)))?;
        let ints = col.as_any().downcast_ref::<Int64Array>()?;
        let at = ints
            .iter()
            .map(|v| v.and_then(|n| usize::try_from(n).ok()).unwrap_or(0))
            .collect();
        let file = display_path(&params.resolve(Path::new(up.params.get("path")?.as_str()?)));
        let file_names = match up.params.get("rename") {
            Some(Value::Object(m)) => m
                .iter()
                .filter_map(|(old, new)| Some((new.as_str()?.to_owned(), old.clone())))
                .collect(),
            _ => BTreeMap::new(),
        };
        Some(Origin {
            file,
            unit,
            at,
            file_names,
        })
    }

    /// `line N` or `row N`: where row `row` (0-based) of the table is in the file.
    pub fn place(&self, row: usize) -> String {
        let n = self.at.get(row).copied().unwrap_or(0);
        format!("{} {n}", self.unit.column())
    }

    /// `file:LINE: column 'Name': ` for row `row` (0-based) of the table and table column
    /// `column`, with the column named as in the file.
    pub fn cell(&self, row: usize, column: &str) -> String {
        let name = self.file_names.get(column).map_or(column, String::as_str);
        let n = self.at.get(row).copied().unwrap_or(0);
        format!("{}column '{name}': ", at(&self.file, self.unit, n))
    }
}

/// The prefix of a message about row `row` (0-based) and column `column` of upstream table
/// `table`: in the data file when its origin is known, else in the table.
pub fn cell(origin: Option<&Origin>, table: &str, row: usize, column: &str) -> String {
    match origin {
        Some(o) => o.cell(row, column),
        None => format!("table '{table}', row {}: column '{column}': ", row + 1),
    }
}

/// `line N` in the data file when the origin is known, else `row N` of the table (0-based `row`).
pub fn place(origin: Option<&Origin>, row: usize) -> String {
    match origin {
        Some(o) => o.place(row),
        None => format!("row {}", row + 1),
    }
}

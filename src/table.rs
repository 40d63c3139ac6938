//! Arrow tables as the unit of data between stages: building them, reading columns by name,
//! and their *logical* content hash (schema + values, independent of any file encoding).
//!
//! Printing lives here too: [`fmt_f64`] and [`fmt_json`] write numbers as a person reads them
//! (integers as integers, other values in the shortest text that reads back to the same f64),
//! and [`to_csv`] uses them for float columns. Parquet encoding lives in `store`; nothing here
//! touches the disk.

use anyhow::{Context, Result, anyhow, bail};
use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float32Array, Float64Array, Int32Array, Int64Array,
    LargeStringArray, StringArray, StringViewArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use std::sync::Arc;

/// An Arrow record batch: one stage output table.
pub type Table = RecordBatch;

/// Builds a [`Table`] column by column.
#[derive(Default)]
pub struct TableBuilder {
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
}

impl TableBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a non-null f64 column.
    pub fn f64(self, name: &str, values: Vec<f64>) -> Self {
        self.push(
            name,
            DataType::Float64,
            Arc::new(Float64Array::from(values)),
        )
    }

    /// Adds an f64 column with nulls where the value is `None`.
    pub fn opt_f64(self, name: &str, values: Vec<Option<f64>>) -> Self {
        self.push(
            name,
            DataType::Float64,
            Arc::new(Float64Array::from(values)),
        )
    }

    /// Adds a non-null i64 column.
    pub fn i64(self, name: &str, values: Vec<i64>) -> Self {
        self.push(name, DataType::Int64, Arc::new(Int64Array::from(values)))
    }

    /// Adds a non-null string column.
    pub fn str<S: AsRef<str>>(self, name: &str, values: &[S]) -> Self {
        let arr = StringArray::from_iter_values(values.iter().map(|s| s.as_ref()));
        self.push(name, DataType::Utf8, Arc::new(arr))
    }

    /// Adds a non-null boolean column.
    pub fn bool(self, name: &str, values: Vec<bool>) -> Self {
        self.push(
            name,
            DataType::Boolean,
            Arc::new(BooleanArray::from(values)),
        )
    }

    /// Adds an arbitrary Arrow column.
    pub fn column(self, name: &str, array: ArrayRef) -> Self {
        let dt = array.data_type().clone();
        self.push(name, dt, array)
    }

    fn push(mut self, name: &str, dt: DataType, array: ArrayRef) -> Self {
        let nullable = array.null_count() > 0;
        self.fields.push(Field::new(name, dt, nullable));
        self.columns.push(array);
        self
    }

    /// Finishes the table; fails if the columns differ in length.
    pub fn build(self) -> Result<Table> {
        let schema = Arc::new(Schema::new(self.fields));
        RecordBatch::try_new(schema, self.columns).context("building a table")
    }
}

/// The f64 values of column `name` (integer columns are converted).
pub fn f64_column(table: &Table, name: &str) -> Result<Vec<f64>> {
    let col = column(table, name)?;
    let any = col.as_any();
    if let Some(a) = any.downcast_ref::<Float64Array>() {
        return Ok(a.iter().map(|v| v.unwrap_or(f64::NAN)).collect());
    }
    if let Some(a) = any.downcast_ref::<Float32Array>() {
        return Ok(a.iter().map(|v| v.map_or(f64::NAN, f64::from)).collect());
    }
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        return Ok(a.iter().map(|v| v.map_or(f64::NAN, |x| x as f64)).collect());
    }
    if let Some(a) = any.downcast_ref::<Int32Array>() {
        return Ok(a.iter().map(|v| v.map_or(f64::NAN, f64::from)).collect());
    }
    if let Some(a) = any.downcast_ref::<UInt64Array>() {
        return Ok(a.iter().map(|v| v.map_or(f64::NAN, |x| x as f64)).collect());
    }
    bail!(
        "column '{name}' has type {}, expected a number",
        col.data_type()
    )
}

/// The values of a string column `name`.
pub fn str_column(table: &Table, name: &str) -> Result<Vec<String>> {
    let col = column(table, name)?;
    let strings = arrow::compute::cast(col, &DataType::Utf8)
        .with_context(|| format!("column '{name}' cannot be read as text"))?;
    let a = strings
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| anyhow!("column '{name}' cannot be read as text"))?;
    Ok(a.iter().map(|v| v.unwrap_or("").to_owned()).collect())
}

/// Column `name`, with an error listing the available columns.
pub fn column<'a>(table: &'a Table, name: &str) -> Result<&'a ArrayRef> {
    table.column_by_name(name).ok_or_else(|| {
        let names: Vec<&str> = table
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        anyhow!(
            "no column '{name}' in the table (columns: {})",
            names.join(", ")
        )
    })
}

/// A number as a person reads it, always in the shortest text that reads back to the same
/// f64: integer-valued numbers as integers (`24`, `1838146833`), others in decimal
/// (`0.07225232544`); below 1e-4 in exponent form (`5.22e-6`), and from 1e9 up in whichever of
/// the two forms is shorter (`51010904450.3`, `2.46e11`, `1e20`).
pub fn fmt_f64(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    shortest(x.abs(), format!("{x}"), format!("{x:e}"))
}

/// [`fmt_f64`] for an f32 value: the shortest text that reads back to the same f32.
pub fn fmt_f32(x: f32) -> String {
    if !x.is_finite() {
        return fmt_f64(f64::from(x));
    }
    shortest(f64::from(x.abs()), format!("{x}"), format!("{x:e}"))
}

/// The choice of [`fmt_f64`] between the decimal and the exponent text of a finite number.
fn shortest(magnitude: f64, decimal: String, exponent: String) -> String {
    if magnitude == 0.0 || (1e-4..1e9).contains(&magnitude) {
        decimal
    } else if magnitude < 1e-4 || exponent.len() < decimal.len() {
        exponent
    } else {
        decimal
    }
}

/// [`fmt_f64`] keeping a float recognisable as one: a whole number gets `.0` (`932.0`), so
/// that a CSV export reads back with its column's type as well as its values.
pub fn fmt_f64_typed(x: f64) -> String {
    with_float_mark(fmt_f64(x))
}

/// `932` → `932.0`; any text with a point, an exponent or letters is left as it is.
fn with_float_mark(s: String) -> String {
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        s + ".0"
    } else {
        s
    }
}

/// A JSON value (a parameter default, a sweep value) in YAML flow style, numbers as
/// [`fmt_f64`] writes them: `[5, 7]`, `{q: 1.5}`, `"auto"`, `null`.
pub fn fmt_json(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => "null".to_owned(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(x)) => fmt_f64(x),
            _ => n.to_string(),
        },
        J::String(s) => serde_json::to_string(s).unwrap_or_else(|_| s.clone()),
        J::Array(a) => format!(
            "[{}]",
            a.iter().map(fmt_json).collect::<Vec<_>>().join(", ")
        ),
        J::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}: {}", fmt_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The display text of every row of a column: floats as [`fmt_f64`] writes them (with `typed`,
/// whole ones keep a `.0` as in [`fmt_f64_typed`]), nulls empty, other types as Arrow displays
/// them.
pub fn column_text(col: &dyn Array, typed: bool) -> Result<Vec<String>> {
    let any = col.as_any();
    let float = |s: String| if typed { with_float_mark(s) } else { s };
    if let Some(a) = any.downcast_ref::<Float64Array>() {
        return Ok(a
            .iter()
            .map(|v| v.map(|x| float(fmt_f64(x))).unwrap_or_default())
            .collect());
    }
    if let Some(a) = any.downcast_ref::<Float32Array>() {
        return Ok(a
            .iter()
            .map(|v| v.map(|x| float(fmt_f32(x))).unwrap_or_default())
            .collect());
    }
    let opts = arrow::util::display::FormatOptions::default();
    let f = arrow::util::display::ArrayFormatter::try_new(col, &opts)?;
    Ok((0..col.len()).map(|i| f.value(i).to_string()).collect())
}

/// The first `max_rows` rows as CSV text (header included), for display and export; floats
/// as [`fmt_f64_typed`] writes them, so an exported value reads back bit-identical and as a
/// float.
pub fn to_csv(table: &Table, max_rows: usize) -> Result<String> {
    let n = table.num_rows().min(max_rows);
    let cols = table
        .columns()
        .iter()
        .map(|c| column_text(c.slice(0, n).as_ref(), true))
        .collect::<Result<Vec<_>>>()?;
    let quote = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let mut out: Vec<String> = vec![
        table
            .schema_ref()
            .fields()
            .iter()
            .map(|f| quote(f.name()))
            .collect::<Vec<_>>()
            .join(","),
    ];
    for row in 0..n {
        let cells: Vec<String> = cols.iter().map(|c| quote(&c[row])).collect();
        out.push(cells.join(","));
    }
    Ok(out.join("\n") + "\n")
}

/// The first non-finite value of a float column, as (column name, row), if any.
pub fn first_nonfinite(table: &Table) -> Option<(String, usize)> {
    for (field, col) in table.schema_ref().fields().iter().zip(table.columns()) {
        let bad = match col.data_type() {
            DataType::Float64 => col
                .as_any()
                .downcast_ref::<Float64Array>()
                .and_then(|a| a.iter().position(|v| v.is_some_and(|x| !x.is_finite()))),
            DataType::Float32 => col
                .as_any()
                .downcast_ref::<Float32Array>()
                .and_then(|a| a.iter().position(|v| v.is_some_and(|x| !x.is_finite()))),
            _ => None,
        };
        if let Some(row) = bad {
            return Some((field.name().clone(), row));
        }
    }
    None
}

/// Blake3 of the table's logical content: field names, types, nullability and every value.
///
/// Two tables with the same values hash equal whatever their Parquet encoding, compression or
/// buffer layout, so an encoder upgrade does not invalidate the cache.
pub fn logical_hash(table: &Table) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"eqlab-table-v1\0");
    h.update(&(table.num_columns() as u64).to_le_bytes());
    h.update(&(table.num_rows() as u64).to_le_bytes());
    for (field, col) in table.schema_ref().fields().iter().zip(table.columns()) {
        put_str(&mut h, field.name());
        put_str(&mut h, &field.data_type().to_string());
        h.update(&[u8::from(field.is_nullable())]);
        hash_array(&mut h, col.as_ref());
    }
    h.finalize().to_hex().to_string()
}

fn put_str(h: &mut blake3::Hasher, s: &str) {
    h.update(&(s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

fn hash_array(h: &mut blake3::Hasher, col: &dyn Array) {
    macro_rules! prim {
        ($t:ty, $bytes:expr) => {
            if let Some(a) = col.as_any().downcast_ref::<$t>() {
                for v in a.iter() {
                    match v {
                        Some(x) => {
                            h.update(&[1]);
                            h.update(&$bytes(x));
                        }
                        None => {
                            h.update(&[0]);
                        }
                    }
                }
                return;
            }
        };
    }
    prim!(Float64Array, |x: f64| x.to_bits().to_le_bytes());
    prim!(Float32Array, |x: f32| x.to_bits().to_le_bytes());
    prim!(Int64Array, |x: i64| x.to_le_bytes());
    prim!(Int32Array, |x: i32| x.to_le_bytes());
    prim!(UInt64Array, |x: u64| x.to_le_bytes());
    prim!(UInt32Array, |x: u32| x.to_le_bytes());
    prim!(Date32Array, |x: i32| x.to_le_bytes());
    prim!(BooleanArray, |x: bool| [u8::from(x)]);
    macro_rules! strings {
        ($t:ty) => {
            if let Some(a) = col.as_any().downcast_ref::<$t>() {
                for v in a.iter() {
                    match v {
                        Some(s) => {
                            h.update(&[1]);
                            put_str(h, s);
                        }
                        None => {
                            h.update(&[0]);
                        }
                    }
                }
                return;
            }
        };
    }
    strings!(StringArray);
    strings!(LargeStringArray);
    strings!(StringViewArray);
    // Any other type: its display form, value by value (stable, if slower).
    let opts = arrow::util::display::FormatOptions::default().with_null("\u{0}null");
    match arrow::util::display::ArrayFormatter::try_new(col, &opts) {
        Ok(fmt) => {
            for i in 0..col.len() {
                put_str(h, &fmt.value(i).to_string());
            }
        }
        Err(_) => put_str(h, &format!("{col:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_hash_depends_on_values_names_and_types() {
        let a = TableBuilder::new()
            .f64("x", vec![1.0, 2.0])
            .build()
            .unwrap();
        let b = TableBuilder::new()
            .f64("x", vec![1.0, 2.0])
            .build()
            .unwrap();
        let c = TableBuilder::new()
            .f64("x", vec![1.0, 2.5])
            .build()
            .unwrap();
        let d = TableBuilder::new()
            .f64("y", vec![1.0, 2.0])
            .build()
            .unwrap();
        let e = TableBuilder::new().i64("x", vec![1, 2]).build().unwrap();
        assert_eq!(logical_hash(&a), logical_hash(&b));
        let others = [logical_hash(&c), logical_hash(&d), logical_hash(&e)];
        for o in &others {
            assert_ne!(&logical_hash(&a), o);
        }
    }

    #[test]
    fn nonfinite_is_found_with_its_column() {
        let t = TableBuilder::new()
            .f64("ok", vec![1.0, 2.0])
            .f64("bad", vec![0.0, f64::NAN])
            .build()
            .unwrap();
        assert_eq!(first_nonfinite(&t), Some(("bad".to_string(), 1)));
    }

    #[test]
    fn numbers_print_as_a_person_reads_them() {
        let cases = [
            (24.0, "24"),
            (-3.0, "-3"),
            (0.0, "0"),
            (1838146833.0, "1838146833"),
            (0.07225232544, "0.07225232544"),
            (51010904450.3, "51010904450.3"),
            (5.22e-6, "5.22e-6"),
            (2.95984380947e-11, "2.95984380947e-11"),
            (1e20, "1e20"),
            (2.46e11, "2.46e11"),
            (1e9, "1e9"),
            (999_999_999.0, "999999999"),
            (1.5e300, "1.5e300"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (x, want) in cases {
            assert_eq!(fmt_f64(x), want, "{x:e}");
            if x.is_finite() {
                assert_eq!(fmt_f64(x).parse::<f64>().unwrap().to_bits(), x.to_bits());
            }
        }
        assert_eq!(fmt_f32(0.1), "0.1");
        assert_eq!(fmt_f64_typed(932.0), "932.0");
        assert_eq!(fmt_f64_typed(-0.0), "-0.0");
        assert_eq!(fmt_f64_typed(5.22e-6), "5.22e-6");
        assert_eq!(fmt_f64_typed(f64::NAN), "NaN");
        let v: serde_json::Value =
            serde_json::from_str(r#"{"a": [5, 7.0, 1e-10], "b": "auto", "c": null}"#).unwrap();
        assert_eq!(fmt_json(&v), r#"{a: [5, 7, 1e-10], b: "auto", c: null}"#);
    }

    #[test]
    fn csv_prints_floats_shortest_and_quotes_text() {
        let t = TableBuilder::new()
            .f64("x", vec![24.0, 0.1, 5.22e-6])
            .opt_f64("y", vec![Some(1.5), None, Some(-2.0)])
            .i64("n", vec![1, 2, 3])
            .str("s", &["a,b", "q\"x", "plain"])
            .build()
            .unwrap();
        assert_eq!(
            to_csv(&t, 2).unwrap(),
            "x,y,n,s\n24.0,1.5,1,\"a,b\"\n0.1,,2,\"q\"\"x\"\n"
        );
        assert_eq!(to_csv(&t, 10).unwrap().lines().count(), 4);
    }
}

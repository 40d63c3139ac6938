//! Arrow tables as the unit of data between stages: building them, reading columns by name,
//! and their *logical* content hash (schema + values, independent of any file encoding).
//!
//! Parquet encoding lives in `store`; nothing here touches the disk.

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

/// The first `max_rows` rows as CSV text (header included), for display and export.
pub fn to_csv(table: &Table, max_rows: usize) -> Result<String> {
    let opts = arrow::util::display::FormatOptions::default();
    let fmts = table
        .columns()
        .iter()
        .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &opts))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let quote = |s: String| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    };
    let mut out: Vec<String> = vec![
        table
            .schema_ref()
            .fields()
            .iter()
            .map(|f| quote(f.name().clone()))
            .collect::<Vec<_>>()
            .join(","),
    ];
    for row in 0..table.num_rows().min(max_rows) {
        let cells: Vec<String> = fmts
            .iter()
            .map(|f| quote(f.value(row).to_string()))
            .collect();
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
}

//! The one boundary between polars DataFrames and the engine's Arrow tables: the conversion goes
//! through in-memory Parquet bytes, which both libraries read and write faithfully.

use crate::table::Table;
use anyhow::{Context, Result};
use polars::prelude::{DataFrame, ParquetWriter};

/// Converts a polars DataFrame into an Arrow table.
pub fn from_polars(df: &mut DataFrame) -> Result<Table> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .finish(df)
        .context("encoding a DataFrame as Parquet")?;
    crate::store::decode_parquet_from(bytes::Bytes::from(buf))
}

//! The one boundary between polars DataFrames and the engine's Arrow tables: both directions
//! go through in-memory Parquet bytes, which both libraries read and write faithfully.

use crate::table::Table;
use anyhow::{Context, Result};
use arrow::record_batch::RecordBatchReader;
use polars::prelude::{DataFrame, ParquetReader, ParquetWriter, SerReader};
use std::io::Cursor;

/// Converts a polars DataFrame into an Arrow table.
pub fn from_polars(df: &mut DataFrame) -> Result<Table> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .finish(df)
        .context("encoding a DataFrame as Parquet")?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(buf),
    )?
    .build()?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(arrow::compute::concat_batches(&schema, &batches)?)
}

/// Converts an Arrow table into a polars DataFrame.
pub fn to_polars(t: &Table) -> Result<DataFrame> {
    let bytes = crate::store::encode_parquet(t)?;
    ParquetReader::new(Cursor::new(bytes))
        .finish()
        .context("decoding Parquet into a DataFrame")
}

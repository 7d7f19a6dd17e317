//! A DataFrame to a file or stdout as CSV, JSON, NDJSON or Parquet, with Polars' writers.

use std::io::Write;

use anyhow::Result;
use polars::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Ndjson,
    Parquet,
}

pub fn write(df: &mut DataFrame, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Csv => CsvWriter::new(out).include_header(true).finish(df)?,
        Format::Json => JsonWriter::new(out).with_json_format(JsonFormat::Json).finish(df)?,
        Format::Ndjson => JsonWriter::new(out).with_json_format(JsonFormat::JsonLines).finish(df)?,
        Format::Parquet => {
            ParquetWriter::new(out).finish(df)?;
        }
        Format::Table => unreachable!("tables are rendered by render::table"),
    }
    Ok(())
}

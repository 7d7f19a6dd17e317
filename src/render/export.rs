//! A DataFrame to a file or stdout as CSV, JSON, NDJSON or Parquet, with Polars' writers.

use std::io::Write;

use anyhow::Result;
use polars::io::parquet::write::BatchedWriter as ParquetBatches;
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
            parquet_writer(out).finish(df)?;
        }
        Format::Table => unreachable!("tables are rendered by render::table"),
    }
    Ok(())
}

/// Writes a result that arrives in batches (see `pg::frames::copy_frames`), each as it comes:
/// CSV and NDJSON batches simply follow one another, Parquet gets a row group per batch.
/// The first batch may be empty; it fixes the columns (and the CSV header).
pub struct Batches<W: Write> {
    format: Format,
    out: Option<W>,
    parquet: Option<ParquetBatches<W>>,
    header_written: bool,
}

impl<W: Write> Batches<W> {
    /// For the formats that `streams`; the caller flushes `out` after `finish`.
    pub fn new(format: Format, out: W) -> Batches<W> {
        assert!(streams(format), "{format:?} is written whole");
        Batches { format, out: Some(out), parquet: None, header_written: false }
    }

    pub fn write(&mut self, mut batch: DataFrame) -> Result<()> {
        match self.format {
            Format::Parquet => {
                if self.parquet.is_none() {
                    let out = self.out.take().expect("the output is only taken once");
                    self.parquet = Some(parquet_writer(out).batched(batch.schema())?);
                }
                if batch.height() > 0 {
                    self.parquet.as_mut().expect("created above").write_batch(&batch)?;
                }
            }
            Format::Csv => {
                let out = self.out.as_mut().expect("kept for CSV");
                CsvWriter::new(out).include_header(!self.header_written).finish(&mut batch)?;
                self.header_written = true;
            }
            Format::Ndjson if batch.height() > 0 => {
                JsonWriter::new(self.out.as_mut().expect("kept for NDJSON")).with_json_format(JsonFormat::JsonLines).finish(&mut batch)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Finishes the file (Parquet's footer).
    pub fn finish(self) -> Result<()> {
        if let Some(p) = self.parquet {
            p.finish()?;
        }
        Ok(())
    }
}

/// Whether `format` can be written a batch at a time (CSV, NDJSON, Parquet); the others
/// need the whole result (`write`).
pub fn streams(format: Format) -> bool {
    matches!(format, Format::Csv | Format::Ndjson | Format::Parquet)
}

/// Parquet with LZ4 (the raw block format Parquet specifies): zstd, Polars' default, took a
/// fifth of a large export's time to save a little space; every current reader (Spark,
/// DuckDB, pyarrow, Polars) reads LZ4_RAW.
fn parquet_writer<W: Write>(out: W) -> ParquetWriter<W> {
    ParquetWriter::new(out).with_compression(ParquetCompression::Lz4Raw)
}

//! The lake: each table's accepted rows as Parquet, partitioned by day in the Hive layout
//! that Spark, Trino, Athena and Polars read natively:
//!
//! ```text
//! LAKE/<table>/date=2019-05-13/part-<load_id>.parquet      (by the contract's `day`)
//! LAKE/<table>/part-<load_id>.parquet                      (a contract without one)
//! ```
//!
//! Files are written under `LAKE/_tier_staging/` (a leading `_` hides it from those
//! engines) and moved into place only after the database load has committed, so the
//! lake never shows a load the database does not have. Replace swaps the table's
//! directory; append adds one file per day per load.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;

use crate::dataset::Dataset;
use crate::pg::load::Mode;
use crate::transform::timestamp::day_of_micros;

const STAGING: &str = "_tier_staging";

pub struct LakeWriter {
    root: PathBuf,
    ds: &'static Dataset,
    mode: Mode,
    staging: PathBuf,
    file_name: String,
    writers: BTreeMap<String, polars::io::parquet::write::BatchedWriter<File>>,
}

impl LakeWriter {
    /// Starts writing one load. `tag` makes the file names of this load unique.
    pub fn new(root: &Path, ds: &'static Dataset, mode: Mode, tag: &str) -> Result<Self> {
        if mode == Mode::Merge {
            // Parquet files are written once: a merge's updates would need the files holding
            // the old rows rewritten, or readers that pick the latest row per key.
            return Err(crate::error::Failure::Input(format!(
                "{}: --lake with --mode merge is not supported (the lake's files are append-only); \
                 load the lake with --mode append or replace",
                ds.name
            ))
            .into());
        }
        let staging = root.join(STAGING).join(format!("{}-{tag}", ds.name));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).ok();
        }
        std::fs::create_dir_all(&staging).with_context(|| format!("lake: cannot create {}", staging.display()))?;
        Ok(LakeWriter { root: root.to_path_buf(), ds, mode, staging, file_name: format!("part-{tag}.parquet"), writers: BTreeMap::new() })
    }

    /// Adds accepted rows (the dataset's typed columns), split by day.
    pub fn write(&mut self, accepted: &DataFrame) -> Result<()> {
        if accepted.height() == 0 {
            return Ok(());
        }
        let frame = accepted.select(self.ds.column_names())?;
        let Some(day_field) = &self.ds.day_field else {
            // No day column: one file per load, unpartitioned.
            return self.writer(None, &frame)?.write_batch(&frame).map_err(Into::into);
        };
        // Day numbers, not strings: one division per row, a label per distinct day.
        const MICROS_PER_DAY: i64 = 86_400_000_000;
        let column = frame.column(day_field)?;
        let days: Int64Chunked = match column.dtype() {
            DataType::Date => column.date()?.physical().cast(&DataType::Int64)?.i64()?.clone(),
            _ => column.datetime()?.physical().apply_values(|us| us.div_euclid(MICROS_PER_DAY)),
        };
        // A chunk spans a day or two: one filter per day beats a general group-by here.
        let distinct: std::collections::BTreeSet<Option<i64>> = days.into_iter().collect();
        for day in distinct {
            let mask = match day {
                Some(d) => days.equal(d),
                None => days.is_null(),
            };
            let rows = frame.filter(&mask)?;
            let day = day.map(|d| day_of_micros(d * MICROS_PER_DAY)).unwrap_or_else(|| "unknown".into());
            self.writer(Some(format!("date={day}")), &rows)?.write_batch(&rows)?;
        }
        Ok(())
    }

    /// The open file of a partition (`date=...`), or of the whole load when unpartitioned.
    fn writer(&mut self, partition: Option<String>, rows: &DataFrame) -> Result<&mut polars::io::parquet::write::BatchedWriter<File>> {
        let key = partition.clone().unwrap_or_default();
        Ok(match self.writers.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let dir = match &partition {
                    Some(p) => self.staging.join(p),
                    None => self.staging.clone(),
                };
                std::fs::create_dir_all(&dir).with_context(|| format!("lake: cannot create {}", dir.display()))?;
                let file = File::create(dir.join(&self.file_name)).with_context(|| format!("lake: cannot write in {}", dir.display()))?;
                e.insert(ParquetWriter::new(file).with_compression(ParquetCompression::Snappy).batched(rows.schema())?)
            }
        })
    }

    /// Closes the files. Call before the database commit; `publish` after it.
    pub fn finish(&mut self) -> Result<()> {
        for (_, w) in std::mem::take(&mut self.writers) {
            w.finish()?;
        }
        Ok(())
    }

    /// Moves the load's files into the lake.
    pub fn publish(self) -> Result<()> {
        let table_dir = self.root.join(&self.ds.name);
        match self.mode {
            Mode::Replace => {
                let old = self.root.join(STAGING).join(format!("{}-replaced", self.ds.name));
                std::fs::remove_dir_all(&old).ok();
                if table_dir.exists() {
                    std::fs::rename(&table_dir, &old).with_context(|| format!("lake: cannot move {} aside", table_dir.display()))?;
                }
                std::fs::rename(&self.staging, &table_dir).with_context(|| format!("lake: cannot publish {}", table_dir.display()))?;
                std::fs::remove_dir_all(&old).ok();
            }
            Mode::Append | Mode::Merge => {
                for entry in std::fs::read_dir(&self.staging)? {
                    let day_dir = entry?.path();
                    if day_dir.is_file() {
                        // Unpartitioned: the load's one file.
                        std::fs::create_dir_all(&table_dir)?;
                        std::fs::rename(&day_dir, table_dir.join(&self.file_name))
                            .with_context(|| format!("lake: cannot publish into {}", table_dir.display()))?;
                        continue;
                    }
                    let target = table_dir.join(day_dir.file_name().expect("a day directory"));
                    std::fs::create_dir_all(&target)?;
                    std::fs::rename(day_dir.join(&self.file_name), target.join(&self.file_name))
                        .with_context(|| format!("lake: cannot publish into {}", target.display()))?;
                }
                std::fs::remove_dir_all(&self.staging).ok();
            }
        }
        Ok(())
    }

    /// Drops what this load wrote (the database load failed).
    pub fn abandon(self) {
        std::fs::remove_dir_all(&self.staging).ok();
    }
}

/// The lake's tables as lazy frames (every table directory under `root`), for SQL.
pub fn tables(root: &Path) -> Result<Vec<(String, LazyFrame)>> {
    let mut out = Vec::new();
    if !root.is_dir() {
        return Err(crate::error::Failure::Input(format!("{}: no lake tables here (load with --lake first)", root.display())).into());
    }
    let mut dirs: Vec<(String, PathBuf)> = std::fs::read_dir(root)
        .with_context(|| format!("lake: cannot read {}", root.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().to_string(), e.path()))
        .filter(|(name, _)| !name.starts_with('_') && !name.starts_with('.'))
        .collect();
    dirs.sort();
    for (name, dir) in dirs {
        let args = ScanArgsParquet {
            hive_options: polars::io::HiveOptions { enabled: Some(true), hive_start_idx: 0, schema: None, try_parse_dates: false },
            ..Default::default()
        };
        let pattern = format!("{}/**/*.parquet", dir.display());
        let lf = LazyFrame::scan_parquet(&pattern, args).with_context(|| format!("lake: cannot read {}", dir.display()))?;
        out.push((name, lf));
    }
    if out.is_empty() {
        return Err(crate::error::Failure::Input(format!("{}: no lake tables here (load with --lake first)", root.display())).into());
    }
    Ok(out)
}

/// Runs SQL over the lake's tables with Polars' SQL engine.
pub fn query(root: &Path, sql: &str) -> Result<DataFrame> {
    let mut ctx = polars::sql::SQLContext::new();
    for (name, lf) in tables(root)? {
        ctx.register(&name, lf);
    }
    let frame = ctx.execute(sql).context("lake query")?.collect().context("lake query")?;
    Ok(frame)
}

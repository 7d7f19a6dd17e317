//! The lake: each table's accepted rows as Parquet, partitioned by day in the Hive layout
//! that Spark, Trino, Athena and Polars read natively:
//!
//! ```text
//! LAKE/track_events/date=2019-05-13/part-<load_id>.parquet
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
        let frame = accepted.select(self.ds.fields.iter().map(|f| f.name))?;
        // Day numbers, not strings: one division per row, a label per distinct day.
        const MICROS_PER_DAY: i64 = 86_400_000_000;
        let days: Int64Chunked = frame.column(self.ds.day_field)?.datetime()?.physical().apply_values(|us| us.div_euclid(MICROS_PER_DAY));
        // A chunk spans a day or two: one filter per day beats a general group-by here.
        let distinct: std::collections::BTreeSet<Option<i64>> = days.into_iter().collect();
        for day in distinct {
            let mask = match day {
                Some(d) => days.equal(d),
                None => days.is_null(),
            };
            let rows = frame.filter(&mask)?;
            let day = day.map(|d| day_of_micros(d * MICROS_PER_DAY)).unwrap_or_else(|| "unknown".into());
            let writer = match self.writers.entry(day.clone()) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let dir = self.staging.join(format!("date={day}"));
                    std::fs::create_dir_all(&dir).with_context(|| format!("lake: cannot create {}", dir.display()))?;
                    let file =
                        File::create(dir.join(&self.file_name)).with_context(|| format!("lake: cannot write in {}", dir.display()))?;
                    e.insert(ParquetWriter::new(file).with_compression(ParquetCompression::Snappy).batched(&rows.schema())?)
                }
            };
            writer.write_batch(&rows)?;
        }
        Ok(())
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
        let table_dir = self.root.join(self.ds.name);
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
            Mode::Append => {
                for entry in std::fs::read_dir(&self.staging)? {
                    let day_dir = entry?.path();
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
    for ds in crate::dataset::ALL {
        let dir = root.join(ds.name);
        if !dir.is_dir() {
            continue;
        }
        let args = ScanArgsParquet {
            hive_options: polars::io::HiveOptions { enabled: Some(true), hive_start_idx: 0, schema: None, try_parse_dates: false },
            ..Default::default()
        };
        let pattern = format!("{}/**/*.parquet", dir.display());
        let lf = LazyFrame::scan_parquet(&pattern, args).with_context(|| format!("lake: cannot read {}", dir.display()))?;
        out.push((ds.name.to_string(), lf));
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

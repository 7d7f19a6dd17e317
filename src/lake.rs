//! The lake beside the database: each table's accepted rows as Parquet, by day. Two
//! layouts, one writer interface (`LakeWriter`, fed on a thread of its own by `LakeFeed`):
//!
//! - an Apache Iceberg table per table (`lake/`, the default): its catalog in the load's
//!   database, each load one snapshot committed inside the load's own transaction;
//! - the older Hive layout (`--lake-format hive`, below): plain files that Spark, Trino,
//!   Athena and Polars read natively, published after the database commit.
//!
//! ```text
//! LAKE/<table>/date=2019-05-13/part-<load_id>.parquet      (by the contract's `day`)
//! LAKE/<table>/part-<load_id>.parquet                      (a contract without one)
//! ```
//!
//! Hive files are written under `LAKE/_tier_staging/` (a leading `_` hides it from those
//! engines) and moved into place only after the database load has committed, so the
//! lake never shows a load the database does not have. Replace swaps the table's
//! directory; append adds one file per day per load.
//!
//! A Hive lake in object storage (`--lake s3://bucket/lake`) has no atomic rename: the files
//! are written locally, uploaded after the database commit, and only then is the load's
//! commit record written (`LAKE/_tier_log/<table>/<load id>.json`, one PUT, atomic): the files
//! it lists, and whether the load replaced the table. The table is the files of the records
//! from the last replace on; files no record names (an upload cut short) are not part of it.
//! Readers that follow the log (`tier query --lake`, or any reader given those files) see
//! whole loads only; a plain listing of the prefix can see a load's files appear one by one
//! while it publishes, and a replaced table's old files until they are deleted.

pub mod files;
pub mod iceberg_read;
pub mod iceberg_table;
pub mod maintenance;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;

use crate::dataset::Dataset;
use crate::pg::load::Mode;
use crate::values::timestamp::day_of_micros;

const STAGING: &str = "_tier_staging";
/// The commit records of a lake in object storage.
const LOG: &str = "_tier_log";

/// One load's Hive-layout files of one table.
pub struct HiveWriter {
    root: PathBuf,
    /// A lake in object storage: where the files go once the database has committed (they
    /// are written under a local temporary `root` first).
    remote: Option<(crate::source::object::Prefix, tempfile::TempDir)>,
    tag: String,
    ds: &'static Dataset,
    mode: Mode,
    staging: PathBuf,
    file_name: String,
    /// The open files, by partition (`date=...`, or "" unpartitioned), with when each was
    /// last written (at most `OPEN_FILES` at once).
    writers: BTreeMap<String, (Writer, u64)>,
    /// Files written per partition so far (a partition whose file was closed to stay under
    /// `OPEN_FILES` gets another).
    files: BTreeMap<String, u32>,
    writes: u64,
}

type Writer = polars::io::parquet::write::BatchedWriter<File>;

/// Files a load keeps open at once: a load spanning 1,500 days kept 1,500 open and ran out
/// of descriptors under the usual limit of 1,024. Past it the least recently written is
/// closed; its partition gets a second file if more of its rows come.
const OPEN_FILES: usize = 64;

/// The lake's layout: Hive-partitioned Parquet, or an Apache Iceberg table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Hive,
    Iceberg,
}

/// One table's writes to the lake in one load.
pub enum LakeWriter {
    /// Published after the database commit (`publish`).
    Hive(Box<HiveWriter>),
    /// Committed inside the database's transaction (`commit`).
    Iceberg(Box<iceberg_table::IcebergTable>),
}

/// The lake's writes on a thread of their own, beside the COPY's encoding: the writer
/// thread hands each table's accepted rows over (a frame's clone shares its columns) and
/// goes on. Two frames wait at most.
pub struct LakeFeed {
    to_lake: Option<std::sync::mpsc::SyncSender<(usize, DataFrame)>>,
    worker: Option<std::thread::JoinHandle<(Result<()>, Vec<LakeWriter>)>>,
    /// No lake: nothing is handed over.
    idle: Vec<LakeWriter>,
}

impl LakeFeed {
    pub fn start(writers: Vec<LakeWriter>) -> Result<LakeFeed> {
        if writers.is_empty() {
            return Ok(LakeFeed { to_lake: None, worker: None, idle: writers });
        }
        let (to_lake, frames) = std::sync::mpsc::sync_channel::<(usize, DataFrame)>(2);
        let worker = std::thread::Builder::new().name("tier-lake".into()).spawn(move || {
            let mut writers = writers;
            let written = (|| {
                for (table, rows) in frames {
                    if let Some(w) = writers.get_mut(table) {
                        w.write(&rows)?;
                    }
                }
                Ok(())
            })();
            (written, writers)
        })?;
        Ok(LakeFeed { to_lake: Some(to_lake), worker: Some(worker), idle: Vec::new() })
    }

    /// Hands table `table`'s accepted rows to the lake. An error means the lake stopped; its
    /// own error comes from `close`.
    pub fn write(&mut self, table: usize, rows: &DataFrame) -> Result<()> {
        match &self.to_lake {
            Some(to_lake) if rows.height() > 0 => {
                to_lake.send((table, rows.clone())).map_err(|_| anyhow::anyhow!("the lake writer stopped"))
            }
            _ => Ok(()),
        }
    }

    /// Waits for the lake to take every frame: its result, and the writers (to be
    /// committed, published or abandoned, whatever the result).
    pub fn close(mut self) -> (Result<()>, Vec<LakeWriter>) {
        drop(self.to_lake.take());
        match self.worker.take() {
            Some(worker) => worker.join().unwrap_or_else(|_| (Err(anyhow::anyhow!("the lake writer thread panicked")), Vec::new())),
            None => (Ok(()), std::mem::take(&mut self.idle)),
        }
    }
}

impl LakeWriter {
    /// Adds accepted rows (the table's typed columns).
    pub fn write(&mut self, accepted: &DataFrame) -> Result<()> {
        match self {
            LakeWriter::Hive(w) => w.write(accepted),
            LakeWriter::Iceberg(t) => t.write(accepted),
        }
    }

    /// Closes the files, before the database commit.
    pub fn finish(&mut self) -> Result<()> {
        match self {
            LakeWriter::Hive(w) => w.finish(),
            LakeWriter::Iceberg(t) => t.finish(),
        }
    }

    /// The table it writes.
    pub fn table(&self) -> &str {
        match self {
            LakeWriter::Hive(w) => &w.ds.name,
            LakeWriter::Iceberg(t) => t.table(),
        }
    }

    /// Commits an Iceberg table's snapshot in the load's open transaction (`catalog`, the
    /// table's row; `taken`, the days a merge took earlier rows from): its id. A Hive lake
    /// has nothing to do until `publish`.
    pub fn commit(&mut self, catalog: &mut crate::pg::lake_catalog::CatalogRow, taken: &[Option<i32>]) -> Result<Option<i64>> {
        match self {
            LakeWriter::Hive(_) => Ok(None),
            LakeWriter::Iceberg(t) => t.commit(catalog, taken).map(Some),
        }
    }

    /// After the database commit: a Hive lake's files moved (or uploaded) into place.
    pub fn publish(self) -> Result<()> {
        match self {
            LakeWriter::Hive(w) => w.publish(),
            LakeWriter::Iceberg(_) => Ok(()),
        }
    }

    /// The database load failed: what this load wrote is dropped (an Iceberg table's data
    /// files too; no snapshot names them).
    pub fn abandon(self) {
        match self {
            LakeWriter::Hive(w) => w.abandon(),
            LakeWriter::Iceberg(t) => t.abandon(),
        }
    }
}

/// A lake write that failed (a full disk, a permission): bad input for the command's exit
/// code, naming the directory, never an internal error.
fn write_failed(dir: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    crate::error::Failure::Input(format!("lake: cannot write in {}: {e}", dir.display())).into()
}

impl HiveWriter {
    /// Starts writing one load. `tag` makes the file names of this load unique.
    pub fn new(root: &Path, ds: &'static Dataset, mode: Mode, tag: &str) -> Result<Self> {
        if mode == Mode::Merge {
            // Parquet files are written once: a merge's updates would need the files holding
            // the old rows rewritten, or readers that pick the latest row per key.
            return Err(crate::error::Failure::Input(format!(
                "{}: --lake with --mode merge is not supported by the Hive lake (its files are append-only); \
                 the Iceberg lake (--lake-format iceberg) takes merges",
                ds.name
            ))
            .into());
        }
        let (root, remote) = match remote_url(root) {
            Some(url) => {
                let local = tempfile::tempdir().context("lake: cannot make a temporary directory")?;
                (local.path().to_path_buf(), Some((crate::source::object::prefix(&url)?, local)))
            }
            None => (root.to_path_buf(), None),
        };
        let staging = root.join(STAGING).join(format!("{}-{tag}", ds.name));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).ok();
        }
        std::fs::create_dir_all(&staging).with_context(|| format!("lake: cannot create {}", staging.display()))?;
        Ok(HiveWriter {
            root,
            remote,
            tag: tag.to_string(),
            ds,
            mode,
            staging,
            file_name: format!("part-{tag}.parquet"),
            writers: BTreeMap::new(),
            files: BTreeMap::new(),
            writes: 0,
        })
    }

    /// Adds accepted rows (the dataset's typed columns), split by day.
    pub fn write(&mut self, accepted: &DataFrame) -> Result<()> {
        if accepted.height() == 0 {
            return Ok(());
        }
        let frame = accepted.select(self.ds.column_names())?;
        let Some(day_field) = &self.ds.day_field else {
            // No day column: one file per load, unpartitioned.
            let staging = self.staging.clone();
            return self.writer(None, &frame)?.write_batch(&frame).map_err(|e| write_failed(&staging, e));
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
            let dir = self.staging.join(format!("date={day}"));
            self.writer(Some(format!("date={day}")), &rows)?.write_batch(&rows).map_err(|e| write_failed(&dir, e))?;
        }
        Ok(())
    }

    /// The open file of a partition (`date=...`), or of the whole load when unpartitioned.
    fn writer(&mut self, partition: Option<String>, rows: &DataFrame) -> Result<&mut Writer> {
        let key = partition.clone().unwrap_or_default();
        self.writes += 1;
        if !self.writers.contains_key(&key) {
            if self.writers.len() >= OPEN_FILES {
                let oldest = self.writers.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone()).expect("files are open");
                let (w, _) = self.writers.remove(&oldest).expect("an open file");
                w.finish().map_err(|e| write_failed(&self.staging.join(&oldest), e))?;
            }
            let dir = match &partition {
                Some(p) => self.staging.join(p),
                None => self.staging.clone(),
            };
            let n = self.files.entry(key.clone()).or_insert(0);
            let name = match *n {
                0 => self.file_name.clone(),
                k => self.file_name.replace(".parquet", &format!("-{k}.parquet")),
            };
            *n += 1;
            std::fs::create_dir_all(&dir).map_err(|e| write_failed(&dir, e))?;
            let file = File::create(dir.join(name)).map_err(|e| write_failed(&dir, e))?;
            let w = ParquetWriter::new(file)
                .with_compression(ParquetCompression::Snappy)
                .batched(rows.schema())
                .map_err(|e| write_failed(&dir, e))?;
            self.writers.insert(key.clone(), (w, 0));
        }
        let (w, used) = self.writers.get_mut(&key).expect("opened above");
        *used = self.writes;
        Ok(w)
    }

    /// Closes the files. Call before the database commit; `publish` after it.
    pub fn finish(&mut self) -> Result<()> {
        for (partition, (w, _)) in std::mem::take(&mut self.writers) {
            w.finish().map_err(|e| write_failed(&self.staging.join(partition), e))?;
        }
        Ok(())
    }

    /// The load's files in a staging directory (a partition's, or the load's own).
    fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
        files.sort();
        Ok(files)
    }

    /// Moves the load's files into the lake.
    pub fn publish(mut self) -> Result<()> {
        if let Some((prefix, _local)) = self.remote.take() {
            return self.publish_remote(&prefix);
        }
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
                    let path = entry?.path();
                    // Unpartitioned, the load's files; else a day's directory of them.
                    let (from, target) = match path.is_file() {
                        true => (vec![path.clone()], table_dir.clone()),
                        false => (Self::files_in(&path)?, table_dir.join(path.file_name().expect("a day directory"))),
                    };
                    std::fs::create_dir_all(&target).map_err(|e| write_failed(&target, e))?;
                    for file in from {
                        std::fs::rename(&file, target.join(file.file_name().expect("a file")))
                            .with_context(|| format!("lake: cannot publish into {}", target.display()))?;
                    }
                }
                std::fs::remove_dir_all(&self.staging).ok();
            }
        }
        Ok(())
    }

    /// Uploads the load's files, then writes its commit record; a replace then deletes the
    /// files of the loads it replaced.
    fn publish_remote(&self, prefix: &crate::source::object::Prefix) -> Result<()> {
        let table = &self.ds.name;
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(&self.staging)? {
            let path = entry?.path();
            let name = |p: &Path| p.file_name().expect("a file").to_string_lossy().to_string();
            if path.is_file() {
                files.push((format!("{table}/{}", name(&path)), path));
            } else {
                for file in Self::files_in(&path)? {
                    files.push((format!("{table}/{}/{}", name(&path), name(&file)), file));
                }
            }
        }
        files.sort();
        for (key, local) in &files {
            prefix.put_file(key, local)?;
        }
        let keys: Vec<&str> = files.iter().map(|(k, _)| k.as_str()).collect();
        let record = serde_json::json!({
            "load": self.tag,
            "mode": self.mode.as_str(),
            "files": keys,
            "committed_utc": chrono::Utc::now().to_rfc3339(),
        });
        prefix.put(&format!("{LOG}/{table}/{:0>20}.json", self.tag), record.to_string().into_bytes())?;
        if self.mode == Mode::Replace {
            for key in prefix.list(&format!("{table}/"))? {
                if !keys.contains(&key.as_str()) {
                    prefix.delete(&key)?;
                }
            }
        }
        std::fs::remove_dir_all(&self.staging).ok();
        Ok(())
    }

    /// Drops what this load wrote (the database load failed).
    pub fn abandon(self) {
        std::fs::remove_dir_all(&self.staging).ok();
    }
}

/// The URL of a lake in object storage, if `root` names one.
/// Refuses an Iceberg lake where a Hive lake is (its `_tier_log/` in object storage, its
/// `_tier_staging/` on disk): the two layouts do not share a directory, and tier does not
/// convert one into the other. The message says what to do instead.
pub fn refuse_hive_lake(root: &Path) -> Result<()> {
    // A `file://` URL is a directory too: a Hive lake written there by its path has no log.
    let text = root.to_string_lossy();
    let directory = text.strip_prefix("file://").map(Path::new).unwrap_or(root);
    let (hive, mark) = match remote_url(root) {
        _ if directory.join(STAGING).is_dir() => (true, STAGING),
        Some(url) => (!crate::source::object::prefix(&url)?.list(&format!("{LOG}/"))?.is_empty(), LOG),
        None => (false, STAGING),
    };
    if hive {
        return Err(crate::error::Failure::Input(format!(
            "{}: holds a Hive lake ({mark}/), which tier does not convert to Iceberg. Give the Iceberg lake a \
             location of its own (--lake OTHER --lake-format iceberg); a table's first load there writes the \
             whole table, rows of earlier loads included. The Hive lake stays readable with `tier query --lake {}`",
            root.display(),
            root.display()
        ))
        .into());
    }
    Ok(())
}

fn remote_url(root: &Path) -> Option<String> {
    let text = root.to_string_lossy();
    crate::source::object::is_url(&text).then(|| text.to_string())
}

/// A lake in object storage as its commit log says it is, downloaded into a temporary
/// directory in the local layout (for `query --lake`).
fn fetch_remote(url: &str) -> Result<tempfile::TempDir> {
    let prefix = crate::source::object::prefix(url)?;
    let local = tempfile::tempdir().context("lake: cannot make a temporary directory")?;
    let mut tables: Vec<String> = prefix.list(&format!("{LOG}/"))?.iter().filter_map(|k| k.split('/').nth(1).map(str::to_string)).collect();
    tables.dedup();
    // A table is a directory of the local copy: a plain name only.
    tables.retain(|t| !t.is_empty() && t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'));
    for table in tables {
        for key in committed_files(&prefix, &table)? {
            let target = local.path().join(&key);
            std::fs::create_dir_all(target.parent().expect("a table directory"))?;
            prefix.download(&key, &target)?;
        }
    }
    Ok(local)
}

/// The files of a table in an object-storage lake: those of the commit records from the
/// last replace on.
pub fn committed_files(prefix: &crate::source::object::Prefix, table: &str) -> Result<Vec<String>> {
    let mut records = Vec::new();
    for key in prefix.list(&format!("{LOG}/{table}/"))? {
        let record: serde_json::Value =
            serde_json::from_slice(&prefix.get(&key)?).with_context(|| format!("lake: {}/{key} is not a commit record", prefix.url))?;
        records.push(record);
    }
    let start = records.iter().rposition(|r| r["mode"] == "replace").unwrap_or(0);
    let files: Vec<String> = records[start..]
        .iter()
        .flat_map(|r| r["files"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    // A record is read from storage: only the relative keys tier itself writes are taken,
    // so no record can make a reader write outside its directory (`/etc/x`, `t/../../x`).
    if let Some(bad) = files.iter().find(|f| !is_tier_file(table, f)) {
        return Err(crate::error::Failure::Input(format!(
            "lake: {}/{LOG}/{table}/ lists {bad:?}, which is not a file tier writes there ({table}/[date=YYYY-MM-DD/]part-<load>.parquet); refusing the lake",
            prefix.url
        ))
        .into());
    }
    Ok(files)
}

/// Whether `key` is a data file tier writes for `table`: `<table>/part-*.parquet` or
/// `<table>/date=<YYYY-MM-DD|unknown>/part-*.parquet`, plain names only.
fn is_tier_file(table: &str, key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    let file_ok = |f: &str| {
        f.starts_with("part-")
            && f.ends_with(".parquet")
            && f.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && !f.contains("..")
    };
    let day_ok = |d: &str| {
        d.strip_prefix("date=")
            .is_some_and(|day| day == "unknown" || crate::values::timestamp::parse_date(day).is_some_and(|_| day.len() == 10))
    };
    match parts.as_slice() {
        [t, f] => *t == table && file_ok(f),
        [t, d, f] => *t == table && day_ok(d) && file_ok(f),
        _ => false,
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
    // An Iceberg warehouse (DIR/<schema>/<table>/metadata/) is read through its catalog.
    let iceberg = |dir: &Path| std::fs::read_dir(dir).into_iter().flatten().flatten().any(|t| t.path().join("metadata").is_dir());
    if let Some((schema, _)) = dirs.iter().find(|(_, dir)| iceberg(dir)) {
        return Err(crate::error::Failure::Input(format!(
            "{}: holds an Iceberg lake; read it through its catalog: tier query --iceberg --schema {schema} FILE.sql",
            root.display()
        ))
        .into());
    }
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

/// Runs SQL over the lake's tables with Polars' SQL engine (a lake in object storage is
/// fetched first, as its commit log says it is).
pub fn query(root: &Path, sql: &str) -> Result<DataFrame> {
    if let Some(url) = remote_url(root) {
        let local = fetch_remote(&url)?;
        let frame = query(local.path(), sql)?;
        drop(local);
        return Ok(frame);
    }
    let mut ctx = polars::sql::SQLContext::new();
    for (name, lf) in tables(root)? {
        ctx.register(&name, lf);
    }
    let frame = ctx.execute(sql).context("lake query")?.collect().context("lake query")?;
    Ok(frame)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_files_tier_writes_are_read_from_a_record() {
        for good in ["ev/part-12.parquet", "ev/date=2019-05-13/part-12.parquet", "ev/date=unknown/part-12-3.parquet"] {
            assert!(super::is_tier_file("ev", good), "{good}");
        }
        for bad in [
            "/etc/passwd",
            "ev/../../x.parquet",
            "ev/date=2019-05-13/../../part-1.parquet",
            "other/part-1.parquet",
            "ev/date=2019-13-01/part-1.parquet",
            "ev//part-1.parquet",
            "ev/part-1.parquet/x",
            "ev/x.parquet",
            "ev/part-..parquet",
            "ev/date=2019-05-13/sub/part-1.parquet",
        ] {
            assert!(!super::is_tier_file("ev", bad), "{bad}");
        }
    }
}

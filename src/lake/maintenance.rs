//! Looking after an Iceberg lake table: its snapshots with the loads that made them
//! (`tier lake show`), snapshots expired by age (`tier lake expire`), and the files no kept
//! snapshot uses deleted (`tier lake gc`): a killed load's, an expired snapshot's.
//! Each change is one new metadata file and a compare-and-swap of the catalog row, in a
//! transaction of its own.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{Context, Result};
use iceberg::io::FileIO;
use iceberg::spec::{ManifestList, TableMetadata, TableMetadataBuilder};

use super::files::block_on;
use super::iceberg_table::{
    commit_snapshot, new_snapshot_id, parent_manifests, parent_total, partition_day, read_metadata, write_metadata, Files, NewSnapshot,
    Removed, LOAD_ID_PROPERTY,
};
use crate::error::Failure;
use crate::pg::lake_catalog::CatalogRow;

/// One snapshot as `tier lake show` lists it.
#[derive(Debug, serde::Serialize)]
pub struct SnapshotInfo {
    pub snapshot: i64,
    pub parent: Option<i64>,
    /// When it was committed (UTC, RFC 3339).
    pub committed: String,
    pub operation: String,
    /// The tier load that committed it, if tier did.
    pub load: Option<i64>,
    pub added_records: Option<i64>,
    pub total_records: Option<i64>,
    pub current: bool,
}

/// A table's snapshots, oldest first, and where its metadata is.
pub fn snapshots(catalog: &mut CatalogRow) -> Result<(String, Vec<SnapshotInfo>)> {
    let (_, at, metadata) = current(catalog, false)?;
    let mut list: Vec<SnapshotInfo> = metadata
        .snapshots()
        .map(|s| {
            let props = &s.summary().additional_properties;
            let number = |k: &str| props.get(k).and_then(|v| v.parse().ok());
            SnapshotInfo {
                snapshot: s.snapshot_id(),
                parent: s.parent_snapshot_id(),
                committed: chrono::DateTime::from_timestamp_millis(s.timestamp_ms()).map(|t| t.to_rfc3339()).unwrap_or_default(),
                operation: s.summary().operation.as_str().to_string(),
                load: number(LOAD_ID_PROPERTY),
                added_records: number("added-records"),
                total_records: number("total-records"),
                current: metadata.current_snapshot_id() == Some(s.snapshot_id()),
            }
        })
        .collect();
    list.sort_by_key(|s| (s.committed.clone(), s.snapshot));
    Ok((at, list))
}

/// Removes the snapshots committed before `before_ms`, keeping the current one and the
/// `retain_last` newest whatever their age. Returns the removed snapshots' ids.
pub fn expire(catalog: &mut CatalogRow, before_ms: i64, retain_last: usize) -> Result<Vec<i64>> {
    let (file_io, at, metadata) = current(catalog, true)?;
    let mut by_age: Vec<(i64, i64)> = metadata.snapshots().map(|s| (s.timestamp_ms(), s.snapshot_id())).collect();
    by_age.sort();
    let keep_newest: HashSet<i64> = by_age.iter().rev().take(retain_last.max(1)).map(|(_, id)| *id).collect();
    let gone: Vec<i64> = by_age
        .iter()
        .filter(|(t, id)| *t < before_ms && !keep_newest.contains(id) && metadata.current_snapshot_id() != Some(*id))
        .map(|(_, id)| *id)
        .collect();
    if gone.is_empty() {
        return Ok(gone);
    }
    let built = TableMetadataBuilder::new_from_metadata(metadata, Some(at.clone())).remove_snapshots(&gone).build()?.metadata;
    let path = write_metadata(&file_io, &built, Some(&at))?;
    catalog.swap(Some(&at), &path)?;
    Ok(gone)
}

/// Deletes the files under the table's location that no kept snapshot uses (nor any metadata
/// file the table still lists), once older than `grace` (a load still writing its files is
/// younger). Returns them; `dry_run` deletes nothing.
pub fn gc(catalog: &mut CatalogRow, grace: std::time::Duration, dry_run: bool) -> Result<Vec<String>> {
    let (file_io, at, metadata) = current(catalog, true)?;
    let used = used_files(&file_io, &metadata, &at)?;
    let cutoff = std::time::SystemTime::now() - grace;
    let mut gone = Vec::new();
    for (url, modified) in super::files::list(metadata.location())? {
        if used.contains(&url) || modified > cutoff {
            continue;
        }
        if !dry_run {
            block_on(file_io.delete(&url)).with_context(|| format!("lake: cannot delete {url}"))?;
        }
        gone.push(url);
    }
    Ok(gone)
}

/// One day of a lake table against the database table (`tier lake check`).
#[derive(Debug, serde::Serialize)]
pub struct DayCheck {
    /// The day (YYYY-MM-DD), or none: rows without a day, or an unpartitioned table.
    pub day: Option<String>,
    pub lake_rows: u64,
    pub table_rows: u64,
}

impl DayCheck {
    pub fn agrees(&self) -> bool {
        self.lake_rows == self.table_rows
    }
}

/// The lake table's rows per day as its current snapshot's manifests count them (no data
/// file is read), beside the database table's own, day by day.
pub fn check(catalog: &mut CatalogRow) -> Result<Vec<DayCheck>> {
    let (file_io, _, metadata) = current(catalog, false)?;
    let mut lake: std::collections::BTreeMap<Option<i32>, u64> = Default::default();
    for listed in parent_manifests(&file_io, &metadata)? {
        for e in block_on(listed.load_manifest(&file_io))?.entries().iter().filter(|e| e.is_alive()) {
            *lake.entry(partition_day(e.data_file())).or_default() += e.record_count();
        }
    }
    // The day column is the partition's source; without one, the table is one group.
    let spec = metadata.default_partition_spec();
    let day_column = spec.fields().first().and_then(|f| metadata.current_schema().field_by_id(f.source_id)).map(|f| f.name.clone());
    let table = catalog.rows_per_day(day_column.as_deref())?;
    let days: std::collections::BTreeSet<Option<i32>> = lake.keys().chain(table.keys()).copied().collect();
    Ok(days
        .into_iter()
        .map(|d| DayCheck {
            day: d.map(|d| crate::values::timestamp::day_of_micros(d as i64 * 86_400_000_000)),
            lake_rows: lake.get(&d).copied().unwrap_or(0),
            table_rows: table.get(&d).copied().unwrap_or(0),
        })
        .collect())
}

/// What `compact` did: partitions rewritten, and their files before and after.
#[derive(Debug, Default, serde::Serialize)]
pub struct Compacted {
    pub partitions: usize,
    pub files_before: u64,
    pub files_after: u64,
}

/// Rewrites each partition (day) whose current snapshot has several data files as one file,
/// in one `replace` snapshot (the rows and the schema stay as they are). Files of an older
/// schema get the columns added since as nulls.
pub fn compact(catalog: &mut CatalogRow) -> Result<Compacted> {
    use iceberg::writer::file_writer::{FileWriter, FileWriterBuilder, ParquetWriterBuilder};
    let (file_io, at, metadata) = current(catalog, true)?;
    let mut by_day: std::collections::BTreeMap<Option<i32>, Vec<iceberg::spec::DataFile>> = Default::default();
    for listed in parent_manifests(&file_io, &metadata)? {
        for e in block_on(listed.load_manifest(&file_io))?.entries().iter().filter(|e| e.is_alive()) {
            by_day.entry(partition_day(e.data_file())).or_default().push(e.data_file().clone());
        }
    }
    by_day.retain(|_, files| files.len() > 1);
    let mut done = Compacted::default();
    if by_day.is_empty() {
        return Ok(done);
    }
    let schema = metadata.current_schema().clone();
    let spec = metadata.default_partition_spec().as_ref().clone();
    let arrow = Arc::new(iceberg::arrow::schema_to_arrow_schema(&schema)?);
    let files = Files { file_io: &file_io, location: metadata.location(), schema: &schema, spec: &spec, commit: uuid::Uuid::new_v4() };
    let mut written = Vec::new();
    for sources in by_day.values() {
        let dir = sources[0].file_path().rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
        let path = format!("{dir}/compacted-{}.parquet", uuid::Uuid::new_v4());
        let mut writer = block_on(
            ParquetWriterBuilder::new(super::iceberg_table::writer_properties(), schema.clone()).build(file_io.new_output(&path)?),
        )?;
        for source in sources {
            let bytes = block_on(file_io.new_input(source.file_path())?.read())?;
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.with_batch_size(64 * 1024).build())
                .with_context(|| format!("lake: cannot read {}", source.file_path()))?;
            for batch in reader {
                let batch = batch.with_context(|| format!("lake: cannot read {}", source.file_path()))?;
                block_on(writer.write(&conform(&batch, &arrow)?))?;
            }
        }
        for mut file in block_on(writer.close())? {
            file.content(iceberg::spec::DataContentType::Data).partition(sources[0].partition().clone()).partition_spec_id(spec.spec_id());
            written.push(file.build().map_err(|e| anyhow::anyhow!("lake: a data file's entry: {e}"))?);
        }
        done.partitions += 1;
        done.files_before += sources.len() as u64;
    }
    done.files_after = written.len() as u64;
    let rewritten: HashSet<&str> = by_day.values().flatten().map(|f| f.file_path()).collect();
    let snapshot_id = new_snapshot_id(&metadata);
    let sequence = metadata.next_sequence_number();
    let mut removed = Removed::default();
    let mut manifests =
        files.without(parent_manifests(&file_io, &metadata)?, |e| rewritten.contains(e.file_path()), snapshot_id, &mut removed)?;
    manifests.push(files.added(&written, snapshot_id, sequence)?);
    let added_records: u64 = written.iter().map(|f| f.record_count()).sum();
    let added_bytes: u64 = written.iter().map(|f| f.file_size_in_bytes()).sum();
    let total = |key: &str, gone: u64, added: u64| (parent_total(&metadata, key).saturating_sub(gone) + added).to_string();
    let props = std::collections::HashMap::from([
        ("added-data-files".to_string(), written.len().to_string()),
        ("added-records".to_string(), added_records.to_string()),
        ("added-files-size".to_string(), added_bytes.to_string()),
        ("deleted-data-files".to_string(), removed.files.to_string()),
        ("deleted-records".to_string(), removed.records.to_string()),
        ("removed-files-size".to_string(), removed.bytes.to_string()),
        ("total-data-files".to_string(), total("total-data-files", removed.files, written.len() as u64)),
        ("total-records".to_string(), total("total-records", removed.records, added_records)),
        ("total-files-size".to_string(), total("total-files-size", removed.bytes, added_bytes)),
        ("total-delete-files".to_string(), "0".to_string()),
        ("total-position-deletes".to_string(), "0".to_string()),
        ("total-equality-deletes".to_string(), "0".to_string()),
    ]);
    if removed.records != added_records {
        return Err(anyhow::anyhow!("lake: compaction read {} rows where the files hold {}", added_records, removed.records));
    }
    let summary = iceberg::spec::Summary { operation: iceberg::spec::Operation::Replace, additional_properties: props };
    let schema_id = schema.schema_id();
    let new = NewSnapshot { id: snapshot_id, sequence, manifests, summary, schema_id, evolve: None };
    commit_snapshot(catalog, &files, metadata.clone(), Some(at), new)?;
    Ok(done)
}

/// A batch read from a data file as the table's current schema has it: its columns by
/// name, those added since as nulls.
fn conform(batch: &arrow_array::RecordBatch, schema: &Arc<arrow_schema::Schema>) -> Result<arrow_array::RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => c.clone(),
            None => arrow_array::new_null_array(f.data_type(), batch.num_rows()),
        })
        .collect();
    Ok(arrow_array::RecordBatch::try_new(schema.clone(), columns)?)
}

/// The table's file IO, current metadata location and metadata (`lock`: its row locked).
fn current(catalog: &mut CatalogRow, lock: bool) -> Result<(FileIO, String, TableMetadata)> {
    let at =
        catalog.current(lock)?.ok_or_else(|| Failure::Input(format!("lake: {} has no Iceberg table in the catalog", catalog.table())))?;
    let file_io = super::files::file_io(&at)?;
    let metadata = read_metadata(&file_io, &at)?;
    Ok((file_io, at, metadata))
}

/// Every file a kept snapshot uses: the metadata files the table lists, each snapshot's
/// manifest list, its manifests and every file they name (whatever its status there).
fn used_files(file_io: &FileIO, metadata: &TableMetadata, at: &str) -> Result<HashSet<String>> {
    let mut used: HashSet<String> = metadata.metadata_log().iter().map(|l| l.metadata_file.clone()).collect();
    used.insert(at.to_string());
    for snapshot in metadata.snapshots() {
        used.insert(snapshot.manifest_list().to_string());
        let bytes = block_on(file_io.new_input(snapshot.manifest_list())?.read())?;
        for manifest in ManifestList::parse_with_version(&bytes, metadata.format_version())?.entries() {
            used.insert(manifest.manifest_path.clone());
            for entry in block_on(manifest.load_manifest(file_io))?.entries() {
                used.insert(entry.file_path().to_string());
            }
        }
    }
    Ok(used)
}

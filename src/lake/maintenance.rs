//! Looking after an Iceberg lake table: its snapshots with the loads that made them
//! (`tier lake show`), snapshots expired by age (`tier lake expire`), and the files no kept
//! snapshot uses deleted (`tier lake gc`): a killed load's, an expired snapshot's.
//! Each change is one new metadata file and a compare-and-swap of the catalog row, in a
//! transaction of its own.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use iceberg::io::FileIO;
use iceberg::spec::{ManifestList, TableMetadata, TableMetadataBuilder};

use super::iceberg_table::{block_on, read_metadata, write_metadata, LOAD_ID_PROPERTY};
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
    let root = local_path(metadata.location())?;
    let cutoff = std::time::SystemTime::now() - grace;
    let mut gone = Vec::new();
    for file in walk(&root)? {
        let url = format!("file://{}", file.display());
        if used.contains(&url) {
            continue;
        }
        let modified = std::fs::metadata(&file).and_then(|m| m.modified()).with_context(|| format!("lake: {}", file.display()))?;
        if modified > cutoff {
            continue;
        }
        if !dry_run {
            std::fs::remove_file(&file).with_context(|| format!("lake: cannot delete {}", file.display()))?;
        }
        gone.push(url);
    }
    Ok(gone)
}

/// The table's file IO, current metadata location and metadata (`lock`: its row locked).
fn current(catalog: &mut CatalogRow, lock: bool) -> Result<(FileIO, String, TableMetadata)> {
    let at =
        catalog.current(lock)?.ok_or_else(|| Failure::Input(format!("lake: {} has no Iceberg table in the catalog", catalog.table())))?;
    let file_io = FileIO::new_with_fs();
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

fn local_path(location: &str) -> Result<PathBuf> {
    match location.strip_prefix("file://") {
        Some(path) => Ok(PathBuf::from(path)),
        None => Err(Failure::Input(format!("lake: {location} is not a local directory; only local lakes can be collected yet")).into()),
    }
}

/// Every file under `dir` (none if it does not exist).
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(out) };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

//! The Iceberg lake read back through its catalog (`tier query --iceberg`): each table of
//! the schema as of a load (the snapshot that load committed, or the latest before it), its
//! data files scanned by Polars, newest first (a file written before a column was added
//! lacks it; the newest has every column of the snapshot's schema).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use iceberg::spec::{ManifestList, PrimitiveType, Schema, TableMetadata, Type};
use polars::prelude::*;

use super::files::block_on;
use super::iceberg_table::{read_metadata, LOAD_ID_PROPERTY};
use crate::error::Failure;
use crate::pg::lake_catalog::CatalogRow;

/// A table's rows as of a snapshot: its data files (local paths) and columns.
struct Snapshot {
    files: Vec<PathBuf>,
    schema: Vec<(String, DataType)>,
}

/// SQL over lake tables with Polars' SQL engine, each table added as of a load. Files in
/// object storage are fetched into a temporary directory first.
pub struct LakeQuery {
    fetched: tempfile::TempDir,
    ctx: polars::sql::SQLContext,
}

impl LakeQuery {
    pub fn new() -> Result<LakeQuery> {
        let fetched = tempfile::tempdir().context("lake: cannot make a temporary directory")?;
        Ok(LakeQuery { fetched, ctx: polars::sql::SQLContext::new() })
    }

    /// Adds `catalog`'s table as of load `as_of` (None: now), under its name.
    pub fn add(&mut self, catalog: &mut CatalogRow, as_of: Option<i64>) -> Result<()> {
        let table = catalog.table().to_string();
        let snapshot = snapshot_files(catalog, as_of, &self.fetched.path().join(&table))?;
        let names: Vec<Expr> = snapshot.schema.iter().map(|(n, _)| col(n.as_str())).collect();
        let frame = match snapshot.files.is_empty() {
            true => DataFrame::empty_with_schema(&snapshot.schema.iter().map(|(n, t)| Field::new(n.into(), t.clone())).collect()).lazy(),
            false => {
                let args = ScanArgsParquet { allow_missing_columns: true, ..Default::default() };
                LazyFrame::scan_parquet_files(Arc::from(snapshot.files), args)
                    .with_context(|| format!("lake: cannot read {table}"))?
                    .select(names)
            }
        };
        self.ctx.register(&table, frame);
        Ok(())
    }

    pub fn run(mut self, sql: &str) -> Result<DataFrame> {
        self.ctx.execute(sql).context("lake query")?.collect().context("lake query")
    }
}

/// The data files and columns of `catalog`'s table as of load `as_of`, those in object
/// storage downloaded under `dir`.
fn snapshot_files(catalog: &mut CatalogRow, as_of: Option<i64>, dir: &std::path::Path) -> Result<Snapshot> {
    let at = catalog.current(false)?.ok_or_else(|| Failure::Input(format!("lake: {} has no Iceberg table", catalog.table())))?;
    let file_io = super::files::file_io(&at)?;
    let metadata = read_metadata(&file_io, &at)?;
    let Some(snapshot) = pick(&metadata, as_of, catalog.table())? else {
        // The table did not exist yet: no rows, its first columns.
        let first = metadata.schemas_iter().min_by_key(|s| s.schema_id()).expect("a table has a schema");
        return Ok(Snapshot { files: Vec::new(), schema: columns(first)? });
    };
    let schema = snapshot.schema(&metadata)?;
    let bytes = block_on(file_io.new_input(snapshot.manifest_list())?.read())?;
    let mut files: Vec<(i64, String)> = Vec::new();
    for manifest in ManifestList::parse_with_version(&bytes, metadata.format_version())?.entries() {
        for entry in block_on(manifest.load_manifest(&file_io))?.entries().iter().filter(|e| e.is_alive()) {
            files.push((entry.sequence_number().unwrap_or(0), entry.file_path().to_string()));
        }
    }
    files.sort_by(|a, b| b.cmp(a));
    let mut local = Vec::with_capacity(files.len());
    for (n, (_, url)) in files.into_iter().enumerate() {
        match url.strip_prefix("file://") {
            Some(path) => local.push(PathBuf::from(path)),
            None => {
                std::fs::create_dir_all(dir)?;
                let target = dir.join(format!("{n}.parquet"));
                let bytes = block_on(file_io.new_input(&url)?.read()).with_context(|| format!("lake: cannot fetch {url}"))?;
                std::fs::write(&target, &bytes)?;
                local.push(target);
            }
        }
    }
    Ok(Snapshot { files: local, schema: columns(&schema)? })
}

/// The snapshot as of load `as_of`: the latest whose load is at most it (None: the table
/// came later). A snapshot expired since cannot be read.
fn pick<'m>(metadata: &'m TableMetadata, as_of: Option<i64>, table: &str) -> Result<Option<&'m iceberg::spec::SnapshotRef>> {
    let Some(load) = as_of else {
        return Ok(metadata.current_snapshot());
    };
    let load_of =
        |s: &iceberg::spec::SnapshotRef| s.summary().additional_properties.get(LOAD_ID_PROPERTY).and_then(|v| v.parse::<i64>().ok());
    let mut kept: Vec<&iceberg::spec::SnapshotRef> = metadata.snapshots().collect();
    kept.sort_by_key(|s| s.sequence_number());
    if let Some(found) = kept.iter().rev().find(|s| load_of(s).is_some_and(|l| l <= load)) {
        return Ok(Some(found));
    }
    match kept.first() {
        // The oldest snapshot kept had a parent: an earlier one was expired.
        Some(oldest) if oldest.parent_snapshot_id().is_some() => Err(Failure::Input(format!(
            "lake: {table} no longer has a snapshot as of load {load} (expired); the oldest kept is of load {}",
            load_of(oldest).map_or("?".to_string(), |l| l.to_string())
        ))
        .into()),
        _ => Ok(None),
    }
}

/// The Polars columns of an Iceberg schema (as tier writes them).
fn columns(schema: &Schema) -> Result<Vec<(String, DataType)>> {
    schema
        .as_struct()
        .fields()
        .iter()
        .map(|f| {
            let dtype = match f.field_type.as_ref() {
                Type::Primitive(PrimitiveType::String) => DataType::String,
                Type::Primitive(PrimitiveType::Int) => DataType::Int32,
                Type::Primitive(PrimitiveType::Long) => DataType::Int64,
                Type::Primitive(PrimitiveType::Double) => DataType::Float64,
                Type::Primitive(PrimitiveType::Boolean) => DataType::Boolean,
                Type::Primitive(PrimitiveType::Date) => DataType::Date,
                Type::Primitive(PrimitiveType::Timestamptz) => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
                other => return Err(Failure::Input(format!("lake: column {} is of type {other}, which tier does not read", f.name)).into()),
            };
            Ok((f.name.clone(), dtype))
        })
        .collect()
}

//! One table of the lake as an Apache Iceberg table (format v2): the load's rows go to
//! Parquet data files while they stream (one file per day partition, few and large), and at
//! the end one snapshot is committed by moving the table's row in the catalog, inside the
//! load's own transaction (`commit`): the database table and the lake change together or not
//! at all. A failed or killed load leaves only files no snapshot names.
//!
//! Layout under the warehouse (what Iceberg's JDBC catalog writes):
//!
//! ```text
//! WAREHOUSE/<namespace>/<table>/metadata/00003-<uuid>.metadata.json  (+ manifests, lists)
//! WAREHOUSE/<namespace>/<table>/data/<day>_day=2019-05-13/<load>-<n>-<uuid>.parquet
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use iceberg::io::FileIO;
use iceberg::spec::{
    DataContentType, DataFile, FormatVersion, Literal, ManifestFile, ManifestList, ManifestListWriter, ManifestWriterBuilder, NestedField,
    Operation, PartitionSpec, PrimitiveType, Schema, SchemaRef, Snapshot, SnapshotReference, SnapshotRetention, SortOrder, Struct, Summary,
    TableMetadata, TableMetadataBuilder, Transform, Type, UnboundPartitionSpec, MAIN_BRANCH,
};
use iceberg::writer::file_writer::{FileWriter, FileWriterBuilder, ParquetWriter, ParquetWriterBuilder};
use polars::prelude::*;

use super::files::block_on;
use crate::dataset::{Dataset, Kind};
use crate::error::Failure;
use crate::pg::lake_catalog::{CatalogRow, TableRows};
use crate::pg::load::Mode;

/// Files a load keeps open at once (as the Hive lake: a load spanning 1,500 days must not
/// run out of descriptors). Past it the least recently written is closed; its partition
/// gets another file if more of its rows come.
const OPEN_FILES: usize = 16;

/// The encoded size at which an open data file's row group is flushed (see
/// `writer_properties`).
const ROW_GROUP_BYTES: usize = 1 << 20;

/// The summary property naming the tier load a snapshot holds.
pub const LOAD_ID_PROPERTY: &str = "tier.load-id";

/// A lake write that failed: bad input for the command's exit code, naming the place.
fn failed(place: &str, e: impl std::fmt::Display) -> anyhow::Error {
    Failure::Input(format!("lake: cannot write in {place}: {e}")).into()
}

/// The Iceberg type of a contract column: exact where Iceberg has the type; a `numeric`
/// without a declared precision, and `jsonb`, as their text.
fn iceberg_type(kind: Kind) -> Type {
    Type::Primitive(match kind {
        Kind::Text | Kind::Numeric | Kind::Json => PrimitiveType::String,
        Kind::Integer => PrimitiveType::Int,
        Kind::Bigint => PrimitiveType::Long,
        Kind::Double => PrimitiveType::Double,
        Kind::Boolean => PrimitiveType::Boolean,
        Kind::Timestamp => PrimitiveType::Timestamptz,
        Kind::Date => PrimitiveType::Date,
    })
}

/// The table's schema for this load: the contract's columns, each keeping the field id the
/// table gave it, a new column a new id (Iceberg's schema evolution); columns the table has
/// and the contract no longer does stay, empty in this load's files.
fn schema_for(ds: &Dataset, current: Option<&TableMetadata>) -> Result<Schema> {
    let mut next_id = current.map_or(0, |m| m.last_column_id());
    let mut fields = Vec::new();
    for f in &ds.fields {
        let wanted = iceberg_type(f.kind);
        let id = match current.and_then(|m| m.current_schema().field_by_name(&f.name)) {
            Some(had) if *had.field_type != wanted => {
                return Err(Failure::Input(format!(
                    "lake: {}.{} is {} in the lake table but {} in {}; a column's type cannot change",
                    ds.name, f.name, had.field_type, wanted, ds.source
                ))
                .into())
            }
            Some(had) => had.id,
            None => {
                next_id += 1;
                next_id
            }
        };
        fields.push(Arc::new(NestedField::optional(id, &f.name, wanted)));
    }
    if let Some(m) = current {
        for had in m.current_schema().as_struct().fields() {
            if ds.field(&had.name).is_none() {
                fields.push(had.clone());
            }
        }
    }
    let schema_id = current.map_or(0, |m| m.current_schema_id());
    let schema = Schema::builder().with_schema_id(schema_id).with_fields(fields).build()?;
    Ok(match current {
        // Unchanged: the table's own schema (its id).
        Some(m) if m.current_schema().as_struct() == schema.as_struct() => m.current_schema().as_ref().clone(),
        Some(m) => Schema::builder()
            .with_schema_id(m.schemas_iter().map(|s| s.schema_id()).max().unwrap_or(0) + 1)
            .with_fields(schema.as_struct().fields().iter().cloned())
            .build()?,
        None => schema,
    })
}

/// Partitioned by the day of the contract's `day` column (Iceberg's `day` transform).
fn partition_spec(ds: &Dataset, schema: &Schema) -> Result<UnboundPartitionSpec> {
    let mut spec = UnboundPartitionSpec::builder().with_spec_id(0);
    if let Some(day) = &ds.day_field {
        let source = schema.field_by_name(day).ok_or_else(|| anyhow!("the day column {day} is not in the lake schema"))?;
        spec = spec.add_partition_field(source.id, format!("{day}_day"), Transform::Day)?;
    }
    Ok(spec.build())
}

/// One load's writes to one Iceberg table.
pub struct IcebergTable {
    ds: &'static Dataset,
    mode: Mode,
    load_id: i64,
    file_io: FileIO,
    /// The table's location (`file:///...`, `s3://...`).
    location: String,
    /// The table as it was when the load began (None: it has no row yet), and where.
    base: Option<(TableMetadata, String)>,
    /// For a new table, its metadata before any snapshot.
    fresh: Option<TableMetadata>,
    schema: SchemaRef,
    spec: PartitionSpec,
    arrow: Arc<arrow_schema::Schema>,
    /// Open files, by day (None: unpartitioned, or no day), with when each was last written.
    writers: BTreeMap<Option<i32>, (ParquetWriter, u64)>,
    files_per_day: BTreeMap<Option<i32>, u32>,
    writes: u64,
    done: Vec<DataFile>,
}

impl IcebergTable {
    /// Starts a load's writes to table `ds` of `namespace` in the warehouse directory, the
    /// table's current metadata read from `catalog` (no lock yet: `commit` takes it).
    pub fn begin(
        ds: &'static Dataset,
        warehouse: &std::path::Path,
        namespace: &str,
        mode: Mode,
        load_id: i64,
        catalog: &mut CatalogRow,
    ) -> Result<Self> {
        // A warehouse in object storage (`s3://bucket/prefix`), else a local directory.
        let root = match warehouse.to_str().filter(|w| w.starts_with("s3://")) {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                // `file:///srv/lake` is the directory /srv/lake.
                let warehouse = match warehouse.to_str().and_then(|w| w.strip_prefix("file://")) {
                    Some(path) => std::path::Path::new(path),
                    None => warehouse,
                };
                std::fs::create_dir_all(warehouse).map_err(|e| failed(&warehouse.display().to_string(), e))?;
                let dir = warehouse.canonicalize().map_err(|e| failed(&warehouse.display().to_string(), e))?;
                format!("file://{}", dir.display())
            }
        };
        let file_io = super::files::file_io(&root)?;
        let base = match catalog.current(false)? {
            Some(at) => Some((read_metadata(&file_io, &at)?, at)),
            None => None,
        };
        let location = match &base {
            Some((m, _)) => m.location().to_string(),
            None => format!("{root}/{namespace}/{}", ds.name),
        };
        let schema = schema_for(ds, base.as_ref().map(|(m, _)| m))?;
        let (fresh, spec) = match &base {
            Some((m, _)) => {
                let spec = m.default_partition_spec().as_ref().clone();
                let wanted = partition_spec(ds, &schema)?;
                let same = spec.fields().len() == wanted.fields().len()
                    && spec.fields().iter().zip(wanted.fields()).all(|(a, b)| a.source_id == b.source_id && a.transform == b.transform);
                if !same {
                    return Err(Failure::Input(format!(
                        "lake: {} is partitioned otherwise than {} says (its `day`); load into a new lake, or keep the day column",
                        ds.name, ds.source
                    ))
                    .into());
                }
                (None, spec)
            }
            None => {
                let spec = partition_spec(ds, &schema)?;
                let props = HashMap::from([("write.parquet.compression-codec".to_string(), "zstd".to_string())]);
                let built = TableMetadataBuilder::new(
                    schema.clone(),
                    spec,
                    SortOrder::unsorted_order(),
                    location.clone(),
                    FormatVersion::V2,
                    props,
                )?
                .build()?
                .metadata;
                // A new table's ids are assigned afresh: in column order, as `schema_for` did.
                if built.current_schema().as_struct() != schema.as_struct() {
                    return Err(anyhow!("lake: the new table's field ids differ from the contract's order"));
                }
                let spec = built.default_partition_spec().as_ref().clone();
                (Some(built), spec)
            }
        };
        let schema: SchemaRef = Arc::new(schema);
        let arrow = Arc::new(iceberg::arrow::schema_to_arrow_schema(&schema)?);
        Ok(IcebergTable {
            ds,
            mode,
            load_id,
            file_io,
            location,
            base,
            fresh,
            schema,
            spec,
            arrow,
            writers: BTreeMap::new(),
            files_per_day: BTreeMap::new(),
            writes: 0,
            done: Vec::new(),
        })
    }

    /// Adds accepted rows (the dataset's typed columns), split by day. A merge's accepted
    /// rows are not what the table ends up with (equal rows stay under their earlier load):
    /// its lake rows are read from the merged table at the commit.
    pub fn write(&mut self, accepted: &DataFrame) -> Result<()> {
        match self.mode {
            Mode::Merge => Ok(()),
            _ => self.add(accepted),
        }
    }

    fn add(&mut self, accepted: &DataFrame) -> Result<()> {
        if accepted.height() == 0 {
            return Ok(());
        }
        let batch = record_batch(self.ds, accepted, &self.arrow)?;
        let Some(day_field) = self.ds.day_field.as_ref().filter(|_| !self.spec.fields().is_empty()) else {
            return self.write_day(None, &batch);
        };
        const MICROS_PER_DAY: i64 = 86_400_000_000;
        let column = accepted.column(day_field)?;
        let days: Int32Chunked = match column.dtype() {
            DataType::Date => column.date()?.physical().clone(),
            _ => column.datetime()?.physical().into_iter().map(|us| us.map(|us| us.div_euclid(MICROS_PER_DAY) as i32)).collect(),
        };
        // The rows of each day, found in one pass, taken from the batch once per day.
        let mut rows_of: BTreeMap<Option<i32>, Vec<u32>> = BTreeMap::new();
        for (row, day) in days.into_iter().enumerate() {
            rows_of.entry(day).or_default().push(row as u32);
        }
        if rows_of.len() == 1 {
            return self.write_day(rows_of.into_keys().next().flatten(), &batch);
        }
        for (day, rows) in rows_of {
            let taken = arrow_select::take::take_record_batch(&batch, &arrow_array::UInt32Array::from(rows))?;
            self.write_day(day, &taken)?;
        }
        Ok(())
    }

    fn write_day(&mut self, day: Option<i32>, batch: &arrow_array::RecordBatch) -> Result<()> {
        self.writes += 1;
        let writes = self.writes;
        if !self.writers.contains_key(&day) {
            if self.writers.len() >= OPEN_FILES {
                let oldest = *self.writers.iter().min_by_key(|(_, (_, at))| *at).map(|(d, _)| d).expect("open files");
                self.close(oldest)?;
            }
            let n = self.files_per_day.entry(day).or_default();
            *n += 1;
            let dir = match (day, &self.ds.day_field) {
                (Some(d), Some(name)) if !self.spec.fields().is_empty() => {
                    format!("{name}_day={}", crate::values::timestamp::day_of_micros(d as i64 * 86_400_000_000))
                }
                (None, Some(name)) if !self.spec.fields().is_empty() => format!("{name}_day=null"),
                _ => String::new(),
            };
            let path = format!(
                "{}/data/{dir}{}{}-{n}-{}.parquet",
                self.location,
                if dir.is_empty() { "" } else { "/" },
                self.load_id,
                uuid::Uuid::new_v4()
            );
            let output = self.file_io.new_output(&path)?;
            let writer = block_on(ParquetWriterBuilder::new(writer_properties(), self.schema.clone()).build(output))
                .map_err(|e| failed(&path, e))?;
            self.writers.insert(day, (writer, writes));
        }
        let (writer, at) = self.writers.get_mut(&day).expect("opened above");
        *at = writes;
        block_on(writer.write(batch)).map_err(|e| failed(&self.location, e))?;
        Ok(())
    }

    fn close(&mut self, day: Option<i32>) -> Result<()> {
        let Some((writer, _)) = self.writers.remove(&day) else { return Ok(()) };
        let built = block_on(writer.close()).map_err(|e| failed(&self.location, e))?;
        for mut file in built {
            file.content(DataContentType::Data);
            if !self.spec.fields().is_empty() {
                file.partition(Struct::from_iter([day.map(Literal::date)]));
            }
            file.partition_spec_id(self.spec.spec_id());
            self.done.push(file.build().map_err(|e| anyhow!("lake: a data file's entry: {e}"))?);
        }
        Ok(())
    }

    pub fn table(&self) -> &str {
        &self.ds.name
    }

    /// Deletes the load's data files (the load failed before its snapshot).
    pub fn abandon(mut self) {
        let open: Vec<Option<i32>> = self.writers.keys().copied().collect();
        for day in open {
            let _ = self.close(day);
        }
        for file in &self.done {
            let _ = block_on(self.file_io.delete(file.file_path()));
        }
    }

    /// Closes the data files (before the database commit).
    pub fn finish(&mut self) -> Result<()> {
        let days: Vec<Option<i32>> = self.writers.keys().copied().collect();
        for day in days {
            self.close(day)?;
        }
        Ok(())
    }

    /// Commits the load's snapshot: the table's row is locked, the snapshot written on top of
    /// the table as it is now (an append keeps its files, a replace does not, a merge
    /// rewrites the days it touched), and the row moved to the new metadata, all in
    /// `catalog`'s open transaction, which the caller then commits. `taken`: the days a
    /// merge took earlier rows from (an updated row's old day). Returns the snapshot's id.
    pub fn commit(&mut self, catalog: &mut CatalogRow, taken: &[Option<i32>]) -> Result<i64> {
        // The streamed rows' files are complete before the lock is waited for.
        self.finish()?;
        let at = catalog.current(true)?;
        let (metadata, previous) = match (&at, &self.base, &self.fresh) {
            (Some(at), Some((m, base_at)), _) if at == base_at => (m.clone(), Some(at.clone())),
            (Some(at), _, _) => (read_metadata(&self.file_io, at)?, Some(at.clone())),
            (None, _, Some(fresh)) => (fresh.clone(), None),
            (None, Some(_), None) => {
                return Err(Failure::Input(format!("lake: {} was dropped from the catalog during this load", self.ds.name)).into())
            }
            (None, None, None) => unreachable!("a table without a row starts fresh"),
        };
        // Another writer's commit since the load began is fine if the schema is the same.
        let schema_now = metadata.current_schema();
        let ours = self.schema.as_struct();
        let evolves = schema_now.as_struct() != ours;
        if evolves && self.schema.schema_id() <= schema_now.schema_id() {
            return Err(Failure::Input(format!(
                "lake: {}'s schema changed during this load; nothing was loaded, load again",
                self.ds.name
            ))
            .into());
        }
        let rewrite = self.merged_rows(catalog, &metadata, taken)?;
        self.finish()?; // the files of rows read back from the table
        let snapshot_id = new_snapshot_id(&metadata);
        let sequence = metadata.next_sequence_number();
        let commit = uuid::Uuid::new_v4();
        let parent = parent_manifests(&self.file_io, &metadata)?;
        let mut removed = Removed::default();
        let files = Files { file_io: &self.file_io, location: &self.location, schema: &self.schema, spec: &self.spec, commit };
        let mut manifests = match &rewrite {
            Rewrite::Nothing => parent,
            Rewrite::All => {
                removed = Removed::all_of(&metadata);
                Vec::new()
            }
            Rewrite::Days(days) => files.without(parent, |e| days.contains(&partition_day(e.data_file())), snapshot_id, &mut removed)?,
        };
        if !self.done.is_empty() {
            manifests.push(files.added(&self.done, snapshot_id, sequence)?);
        }
        let summary = self.summary(&metadata, &removed);
        let evolve = evolves.then(|| self.schema.as_ref().clone());
        let new = NewSnapshot { id: snapshot_id, sequence, manifests, summary, schema_id: self.schema.schema_id(), evolve };
        commit_snapshot(catalog, &files, metadata, previous, new)?;
        Ok(snapshot_id)
    }

    /// What the snapshot replaces of the table, and for a merge its new data files, read
    /// from the merged database table: the rows of every day the merge touched (the days
    /// of the rows it wrote, and those it took earlier rows from), or all rows when the
    /// lake table is not partitioned or has no snapshot yet. Copy-on-write by partition,
    /// which every Iceberg reader reads (row-level deletes are not read by all of them).
    /// An append that is the lake table's first also writes the table's earlier rows.
    fn merged_rows(&mut self, catalog: &mut CatalogRow, metadata: &TableMetadata, taken: &[Option<i32>]) -> Result<Rewrite> {
        let first = metadata.current_snapshot().is_none();
        match self.mode {
            Mode::Replace => return Ok(Rewrite::All),
            Mode::Merge => {}
            // The lake table's first load adds the rows earlier loads left in the table: the
            // lake holds what the table does from the start.
            _ if first => {
                catalog.table_rows(self.ds, TableRows::NotOfLoad(self.load_id), |rows| self.add(&rows))?;
                return Ok(Rewrite::Nothing);
            }
            _ => return Ok(Rewrite::Nothing),
        }
        if self.spec.fields().is_empty() || first {
            catalog.table_rows(self.ds, TableRows::All, |rows| self.add(&rows))?;
            return Ok(Rewrite::All);
        }
        let mut days: std::collections::BTreeSet<Option<i32>> = catalog.days_of_load(self.ds, self.load_id)?.into_iter().collect();
        days.extend(taken.iter().copied());
        if !days.is_empty() {
            let listed: Vec<Option<i32>> = days.iter().copied().collect();
            catalog.table_rows(self.ds, TableRows::Days(&listed), |rows| self.add(&rows))?;
        }
        Ok(Rewrite::Days(days))
    }

    /// The snapshot's summary: what it added and removed, the table's totals after it, and
    /// the load.
    fn summary(&self, metadata: &TableMetadata, removed: &Removed) -> Summary {
        let added_records: u64 = self.done.iter().map(|f| f.record_count()).sum();
        let added_size: u64 = self.done.iter().map(|f| f.file_size_in_bytes()).sum();
        let total = |key: &str, removed: u64, added: u64| -> String {
            let before = parent_total(metadata, key);
            (before.saturating_sub(removed) + added).to_string()
        };
        let mut props = HashMap::from([
            ("added-data-files".to_string(), self.done.len().to_string()),
            ("added-records".to_string(), added_records.to_string()),
            ("added-files-size".to_string(), added_size.to_string()),
            ("total-data-files".to_string(), total("total-data-files", removed.files, self.done.len() as u64)),
            ("total-records".to_string(), total("total-records", removed.records, added_records)),
            ("total-files-size".to_string(), total("total-files-size", removed.bytes, added_size)),
            ("total-delete-files".to_string(), "0".to_string()),
            ("total-position-deletes".to_string(), "0".to_string()),
            ("total-equality-deletes".to_string(), "0".to_string()),
            (LOAD_ID_PROPERTY.to_string(), self.load_id.to_string()),
        ]);
        if removed.files > 0 {
            props.insert("deleted-data-files".to_string(), removed.files.to_string());
            props.insert("deleted-records".to_string(), removed.records.to_string());
            props.insert("removed-files-size".to_string(), removed.bytes.to_string());
        }
        let operation = match self.mode {
            Mode::Append => Operation::Append,
            _ => {
                props.insert("replace-partitions".to_string(), "false".to_string());
                Operation::Overwrite
            }
        };
        Summary { operation, additional_properties: props }
    }
}

/// What a snapshot takes out of its table.
enum Rewrite {
    /// Nothing: an append.
    Nothing,
    /// Every data file: a replace, or a merge into a table without partitions.
    All,
    /// The data files of these days: a merge.
    Days(std::collections::BTreeSet<Option<i32>>),
}

/// The data files a snapshot removes, counted for its summary.
#[derive(Default)]
pub(super) struct Removed {
    pub files: u64,
    pub records: u64,
    pub bytes: u64,
}

impl Removed {
    /// All of the table as its current snapshot sums it up.
    fn all_of(metadata: &TableMetadata) -> Removed {
        Removed {
            files: parent_total(metadata, "total-data-files"),
            records: parent_total(metadata, "total-records"),
            bytes: parent_total(metadata, "total-files-size"),
        }
    }
}

/// A total of the table's current snapshot's summary (0 without one).
pub(super) fn parent_total(metadata: &TableMetadata, key: &str) -> u64 {
    metadata.current_snapshot().and_then(|s| s.summary().additional_properties.get(key)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The day a data file's partition holds (None: unpartitioned, or rows without a day).
pub(super) fn partition_day(file: &DataFile) -> Option<i32> {
    match file.partition().fields().first() {
        Some(Some(Literal::Primitive(iceberg::spec::PrimitiveLiteral::Int(day)))) => Some(*day),
        _ => None,
    }
}

/// How data files are written: zstd, and row groups flushed at `ROW_GROUP_BYTES` (an
/// open file holds its row group in memory until then: with the default, a million rows,
/// 64 open files held the whole load, 580 MB for a million events over 82 days).
pub(super) fn writer_properties() -> parquet::file::properties::WriterProperties {
    parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .build()
}

/// A snapshot id the table has not used.
pub(super) fn new_snapshot_id(metadata: &TableMetadata) -> i64 {
    loop {
        let id = (uuid::Uuid::new_v4().as_u64_pair().0 >> 1) as i64;
        if metadata.snapshot_by_id(id).is_none() && id > 0 {
            return id;
        }
    }
}

/// The manifests of the table's current snapshot (none without one).
pub(super) fn parent_manifests(file_io: &FileIO, metadata: &TableMetadata) -> Result<Vec<ManifestFile>> {
    match metadata.current_snapshot() {
        None => Ok(Vec::new()),
        Some(parent) => {
            let bytes = block_on(file_io.new_input(parent.manifest_list())?.read())?;
            Ok(ManifestList::parse_with_version(&bytes, metadata.format_version())?.consume_entries().into_iter().collect())
        }
    }
}

/// Where one commit writes its manifests, and the table's schema and spec they follow.
pub(super) struct Files<'a> {
    pub file_io: &'a FileIO,
    pub location: &'a str,
    pub schema: &'a SchemaRef,
    pub spec: &'a PartitionSpec,
    /// Names this commit's manifests and manifest list.
    pub commit: uuid::Uuid,
}

impl Files<'_> {
    fn writer(&self, path: &str, snapshot_id: i64) -> Result<iceberg::spec::ManifestWriter> {
        Ok(ManifestWriterBuilder::new(self.file_io.new_output(path)?, Some(snapshot_id), self.schema.clone(), self.spec.clone())
            .build_v2_data())
    }

    /// A manifest adding `files` in snapshot `snapshot_id`.
    pub fn added(&self, files: &[DataFile], snapshot_id: i64, sequence: i64) -> Result<ManifestFile> {
        let path = format!("{}/metadata/{}-m0.avro", self.location, self.commit);
        let mut writer = self.writer(&path, snapshot_id)?;
        for file in files {
            writer.add_file(file.clone(), sequence)?;
        }
        block_on(writer.write_manifest_file()).map_err(|e| failed(&path, e))
    }

    /// The parent snapshot's manifests less the data files `drop` picks: a manifest holding
    /// none is kept as it is; one holding some is written anew, those files marked deleted
    /// and the rest existing.
    pub fn without(
        &self,
        manifests: Vec<ManifestFile>,
        drop: impl Fn(&iceberg::spec::ManifestEntry) -> bool,
        snapshot_id: i64,
        removed: &mut Removed,
    ) -> Result<Vec<ManifestFile>> {
        let mut kept = Vec::with_capacity(manifests.len());
        for (n, listed) in manifests.into_iter().enumerate() {
            let manifest = block_on(listed.load_manifest(self.file_io))?;
            let hit = |e: &iceberg::spec::ManifestEntry| e.is_alive() && drop(e);
            if !manifest.entries().iter().any(|e| hit(e)) {
                kept.push(listed);
                continue;
            }
            let path = format!("{}/metadata/{}-m{}.avro", self.location, self.commit, n + 1);
            let mut writer = self.writer(&path, snapshot_id)?;
            for e in manifest.entries().iter().filter(|e| e.is_alive()) {
                let sequence = e.sequence_number().ok_or_else(|| anyhow!("lake: {} has no sequence number", e.file_path()))?;
                if hit(e) {
                    removed.files += 1;
                    removed.records += e.record_count();
                    removed.bytes += e.file_size_in_bytes();
                    writer.add_delete_file(e.data_file().clone(), sequence, e.file_sequence_number)?;
                } else {
                    let added_by = e.snapshot_id().ok_or_else(|| anyhow!("lake: {} has no snapshot", e.file_path()))?;
                    writer.add_existing_file(e.data_file().clone(), added_by, sequence, e.file_sequence_number)?;
                }
            }
            kept.push(block_on(writer.write_manifest_file()).map_err(|e| failed(&path, e))?);
        }
        Ok(kept)
    }
}

/// A snapshot about to be committed.
pub(super) struct NewSnapshot {
    pub id: i64,
    pub sequence: i64,
    pub manifests: Vec<ManifestFile>,
    pub summary: Summary,
    pub schema_id: i32,
    /// A new current schema it brings (schema evolution).
    pub evolve: Option<Schema>,
}

/// Writes the snapshot's manifest list and the table's next metadata on top of `metadata`
/// (at `previous`), and moves the catalog row there by compare-and-swap, in the row's open
/// transaction.
pub(super) fn commit_snapshot(
    catalog: &mut CatalogRow,
    files: &Files,
    metadata: TableMetadata,
    previous: Option<String>,
    new: NewSnapshot,
) -> Result<()> {
    let list_path = format!("{}/metadata/snap-{}-0-{}.avro", files.location, new.id, files.commit);
    let mut list = ManifestListWriter::v2(
        block_on(files.file_io.new_output(&list_path)?.writer())?,
        new.id,
        metadata.current_snapshot_id(),
        new.sequence,
    );
    list.add_manifests(new.manifests.into_iter())?;
    block_on(list.close()).map_err(|e| failed(&list_path, e))?;
    let snapshot = Snapshot::builder()
        .with_manifest_list(list_path)
        .with_snapshot_id(new.id)
        .with_parent_snapshot_id(metadata.current_snapshot_id())
        .with_sequence_number(new.sequence)
        .with_summary(new.summary)
        .with_schema_id(new.schema_id)
        .with_timestamp_ms(chrono::Utc::now().timestamp_millis())
        .build();
    let mut builder = TableMetadataBuilder::new_from_metadata(metadata, previous.clone());
    if let Some(schema) = new.evolve {
        builder = builder.add_current_schema(schema)?;
    }
    let built = builder
        .add_snapshot(snapshot)?
        .set_ref(MAIN_BRANCH, SnapshotReference::new(new.id, SnapshotRetention::branch(None, None, None)))?
        .build()?
        .metadata;
    let path = write_metadata(files.file_io, &built, previous.as_deref())?;
    catalog.swap(previous.as_deref(), &path)
}

/// Writes a table's new metadata file (the version after `previous`'s): its location.
pub(super) fn write_metadata(file_io: &FileIO, metadata: &TableMetadata, previous: Option<&str>) -> Result<String> {
    let version = previous.and_then(metadata_version).map_or(0, |v| v + 1);
    let path = format!("{}/metadata/{version:05}-{}.metadata.json", metadata.location(), uuid::Uuid::new_v4());
    let json = serde_json::to_vec(metadata)?;
    block_on(file_io.new_output(&path)?.write(json.into())).map_err(|e| failed(&path, e))?;
    Ok(path)
}

/// The version in a metadata file's name (`00003-<uuid>.metadata.json`).
fn metadata_version(path: &str) -> Option<u64> {
    path.rsplit('/').next()?.split('-').next()?.parse().ok()
}

pub(super) fn read_metadata(file_io: &FileIO, at: &str) -> Result<TableMetadata> {
    let bytes = block_on(file_io.new_input(at)?.read()).with_context(|| format!("lake: cannot read the table's metadata at {at}"))?;
    serde_json::from_slice(&bytes).with_context(|| format!("lake: {at} is not Iceberg table metadata"))
}

/// A frame's rows as an Arrow batch of the table's schema (columns the contract no longer
/// has, empty).
fn record_batch(ds: &Dataset, frame: &DataFrame, schema: &Arc<arrow_schema::Schema>) -> Result<arrow_array::RecordBatch> {
    use arrow_array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray};
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let Some(f) = ds.field(field.name()) else {
            columns.push(arrow_array::new_null_array(field.data_type(), frame.height()));
            continue;
        };
        let c = frame.column(&f.name)?.as_materialized_series();
        let array: ArrayRef = match f.kind {
            Kind::Text | Kind::Numeric | Kind::Json => Arc::new(c.str()?.iter().collect::<StringArray>()),
            Kind::Integer => Arc::new(c.i32()?.iter().collect::<Int32Array>()),
            Kind::Bigint => Arc::new(c.i64()?.iter().collect::<Int64Array>()),
            Kind::Double => Arc::new(c.f64()?.iter().collect::<Float64Array>()),
            Kind::Boolean => Arc::new(c.bool()?.iter().collect::<BooleanArray>()),
            Kind::Date => Arc::new(c.date()?.physical().iter().collect::<Date32Array>()),
            Kind::Timestamp => {
                let tz = match field.data_type() {
                    arrow_schema::DataType::Timestamp(_, tz) => tz.clone(),
                    _ => None,
                };
                Arc::new(c.datetime()?.physical().iter().collect::<TimestampMicrosecondArray>().with_timezone_opt(tz))
            }
        };
        columns.push(array);
    }
    Ok(arrow_array::RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_versions_are_read_from_file_names() {
        assert_eq!(metadata_version("file:///w/ns/t/metadata/00003-1b2c.metadata.json"), Some(3));
        assert_eq!(metadata_version("s3://b/w/ns/t/metadata/00000-x-y.metadata.json"), Some(0));
        assert_eq!(metadata_version("v1.metadata.json"), None);
    }
}

//! One table's load as one transaction: binary COPY into a staging table (replace, merge,
//! a keyed append into a table with rows) or the table itself (append), rejects beside it,
//! a ledger row, then commit.
//!
//! A merge stages its rows in a temporary table, then merges them on the dataset's key
//! (behind a unique index the load creates and keeps): new keys are inserted, changed rows
//! updated (taking this load's id), equal rows left alone; nothing is deleted. A keyed
//! append stages them likewise and inserts those whose key the table does not hold
//! (`keyed`); with a lake, it looks each chunk's keys up before sending its rows instead.
//!
//! Readers see the old table until the commit; any failure before it (a bad file, a lost
//! connection, the process killed) rolls everything back, so the previous table and its
//! rejects stay exactly as they were. Transaction-scoped advisory locks order loads of the
//! same table: a replace excludes every other load of it, appends exclude only each other's
//! file. A replace marks the loads it supersedes `replaced` in the ledger.

use std::io::{Seek, Write};
use std::sync::mpsc::{Receiver, Sender};
use std::time::SystemTime;

use anyhow::{Context, Result};
use polars::prelude::DataFrame;
use postgres::Client;

use super::connect::{describe, exec, ident};
use super::copy::{self, Reject};
use super::ddl::{add_evolved_columns, create_tables, table_ddl, REJECTS_DDL};
use super::keyed::Settled;
use super::ledger::{ensure_ledger, insert_ledger, mark_replaced, next_load_id, object_load, refuse_loaded};
use super::merge::MERGE_STAGE;
use super::spool::RejectSpool;
use crate::dataset::Dataset;
use crate::error::Failure;

use crate::stats::{LoadStats, SchemaChange};

pub use crate::dataset::Mode;

const STAGING_SUFFIX: &str = "__tier_new";
/// The replaced tables, between the swap and their drop just after the commit.
const OLD_SUFFIX: &str = "__tier_old";
/// A keyed append's keys of one chunk, looked up in the table (temporary, as above).
const KEY_PROBE: &str = "pg_temp.tier_keys";
/// A staged keyed append's rows of a table, until the file is in (`TableLoad::settle`).
const KEYED_STAGE: &str = "pg_temp.tier_stage";

/// Takes the table's lock for this load; returns whether a keyed append must look its keys
/// up in the table (it holds rows).
///
/// A replace takes the lock exclusively, an unkeyed append shared, so a replace waits for
/// running appends and appends wait for a running replace (an append that committed into
/// the table a replace then swaps out would be in the ledger as `ok` with its rows gone).
/// A merge excludes the others too: the rows it compares must not change under it. So does
/// a keyed append: the keys of an append running beside it would be invisible to its
/// lookups until that one commits, and the key's unique index would then fail the later of
/// the two at its COPY instead of turning the repeated keys away.
///
/// A split log's tables are locked together, as one table named after the log.
fn lock_table(client: &mut Client, ds: &Dataset, schema: &str, mode: Mode) -> Result<Vec<bool>> {
    let table_key = format!("tier:{schema}.{}", ds.name);
    let tables = ds.tables_here();
    let keyed_append = mode == Mode::Append && tables.iter().any(|t| !t.unique.is_empty());
    let table_lock = match mode == Mode::Append && !keyed_append {
        true => "SELECT pg_advisory_xact_lock_shared(hashtext($1))",
        false => "SELECT pg_advisory_xact_lock(hashtext($1))",
    };
    client.execute(table_lock, &[&table_key]).map_err(|e| Failure::Database(format!("cannot lock {}: {}", ds.name, describe(&e))))?;
    // Into an empty table (asked under the lock, so no load can add rows meanwhile) no key
    // can have been loaded before: the rows stream through one COPY instead of looking their
    // keys up chunk by chunk (the duplicate check keeps keys unique within a file).
    let mut probes = Vec::new();
    for t in tables {
        // A child's rows go with their parent's (turned away with it).
        let held = match keyed_append && !t.unique.is_empty() && !t.is_child() {
            false => false,
            true => client
                .query_one(&format!("SELECT EXISTS (SELECT FROM {}.{})", ident(schema), ident(&t.name)), &[])
                .map_err(|e| Failure::Database(describe(&e)))?
                .get::<_, bool>(0),
        };
        probes.push(held);
    }
    Ok(probes)
}

/// Whether a table holds no row (asked under the load's lock).
fn is_empty(client: &mut Client, schema: &str, ds: &Dataset) -> Result<bool> {
    let sql = format!("SELECT NOT EXISTS (SELECT FROM {}.{})", ident(schema), ident(&ds.name));
    Ok(client.query_one(&sql, &[]).map_err(|e| Failure::Database(describe(&e)))?.get(0))
}

/// A keyed append's temporary table of one chunk's keys, for the `i`th table of the load.
fn key_probe(i: usize) -> String {
    match i {
        0 => KEY_PROBE.to_string(),
        _ => format!("{KEY_PROBE}_{i}"),
    }
}

/// Where a load's rejects go: a replace's staging table, else the rejects table itself.
fn rejects_target(client: &mut Client, ds: &Dataset, schema: &str, mode: Mode) -> Result<String> {
    let s = ident(schema);
    let rejects = ds.rejects_table();
    if mode != Mode::Replace {
        return Ok(format!("{s}.{}", ident(&rejects)));
    }
    let r = format!("{s}.{}", ident(&format!("{rejects}{STAGING_SUFFIX}")));
    exec(client, "cannot create the staging tables", &format!("DROP TABLE IF EXISTS {r}; CREATE TABLE {r} (\n  {REJECTS_DDL}\n);"))?;
    Ok(r)
}

/// Where the `i`th table's rows go: a replace's staging table, the table itself for an
/// append (and a temporary table of keys to look up), a merge's or a staged keyed append's
/// temporary stage.
fn data_target(client: &mut Client, ds: &Dataset, i: usize, schema: &str, mode: Mode, probe_keys: bool, staged: bool) -> Result<String> {
    let s = ident(schema);
    let table = ds.name.as_str();
    let ddl = table_ddl(ds);
    Ok(match mode {
        Mode::Replace => {
            let t = format!("{s}.{}", ident(&format!("{table}{STAGING_SUFFIX}")));
            exec(client, "cannot create the staging tables", &format!("DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (\n  {ddl}\n);"))?;
            t
        }
        Mode::Append if staged => {
            let stage = numbered(KEYED_STAGE, i);
            let bare = stage.trim_start_matches("pg_temp.");
            exec(
                client,
                "cannot create the load's staging table",
                &format!("DROP TABLE IF EXISTS {stage}; CREATE TEMP TABLE {bare} (\n  {ddl},\n  __record bigint\n) ON COMMIT DROP"),
            )?;
            stage
        }
        Mode::Append => {
            if probe_keys {
                let keys: Vec<String> =
                    ds.unique.iter().filter_map(|k| ds.field(k)).map(|f| format!("{} {}", ident(&f.name), f.kind.sql_type())).collect();
                let probe = key_probe(i);
                let bare = probe.trim_start_matches("pg_temp.");
                exec(
                    client,
                    "cannot create the key probe",
                    &format!(
                        "DROP TABLE IF EXISTS {probe}; CREATE TEMP TABLE {bare} ({}, __record bigint) ON COMMIT DROP",
                        keys.join(", ")
                    ),
                )?;
            }
            format!("{s}.{}", ident(table))
        }
        Mode::Merge => {
            let stage = merge_stage(i);
            let bare = stage.trim_start_matches("pg_temp.");
            exec(
                client,
                "cannot create the merge's staging table",
                &format!(
                    "DROP TABLE IF EXISTS {stage}; CREATE TEMP TABLE {bare} (\n  {ddl},\n  __record bigint,\n  __row bigint GENERATED ALWAYS AS IDENTITY\n) ON COMMIT DROP"
                ),
            )?;
            stage
        }
    })
}

/// A merge's staging table for the `i`th table of the load.
fn merge_stage(i: usize) -> String {
    numbered(MERGE_STAGE, i)
}

/// A temporary table's name for the `i`th table of the load.
fn numbered(name: &str, i: usize) -> String {
    match i {
        0 => name.to_string(),
        _ => format!("{name}_{i}"),
    }
}

/// What a merge's retraction took back from the stages: the superseded records' table, and
/// their child rows' figures (the day, and the row hash the server computes as tier does).
#[derive(Default)]
pub struct Retracted {
    pub records: Vec<(u64, usize)>,
    pub children: Vec<(usize, i64, u64)>,
}

/// One table a load writes: the dataset's own, or one of a split log's.
struct Target {
    ds: &'static Dataset,
    /// Where its rows go (see `data_target`).
    data: String,
    /// A keyed append into a table that held rows, with a lake: keys are looked up chunk by
    /// chunk (the lake is written as the rows go).
    probe_keys: bool,
    /// A staged keyed append into a table that held rows: its keys are looked up at the end.
    held_keys: bool,
    /// A keyed append or a merge into an empty table: its key index is built after the rows
    /// are in.
    index_after: bool,
}

pub struct TableLoad {
    client: Client,
    /// The dataset loaded (a split log: the ledger's name, the lock, the rejects table).
    ds: &'static Dataset,
    /// The tables it writes, in `Dataset::tables` order.
    targets: Vec<Target>,
    schema: String,
    mode: Mode,
    pub load_id: i64,
    source_file: String,
    started: SystemTime,
    rejects_target: String,
    buf: Vec<u8>,
    /// Columns this load adds for new keys.
    schema_changes: Vec<SchemaChange>,
    /// A merge's staged rows are in the tables (`merge`).
    merged: bool,
    /// A keyed append into a table that held rows, without a lake: every table's rows are
    /// staged and go in at the end (`settle`).
    stages_append: bool,
}

impl TableLoad {
    /// Opens the load's transaction and takes the table's lock. In append mode, refuses
    /// a file whose checksum the ledger already holds for this table, unless `force`.
    /// `lake`: the load writes a lake as its rows go (a keyed append then looks its keys up
    /// chunk by chunk rather than staging the file).
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        mut client: Client,
        ds: &'static Dataset,
        schema: &str,
        mode: Mode,
        source_file: &str,
        append_checksum: Option<&str>,
        force: bool,
        lake: bool,
    ) -> Result<Self> {
        ensure_ledger(&mut client, schema)?;
        let tables = ds.tables_here();
        if mode.keeps_rows() {
            for t in &tables {
                create_tables(&mut client, t, schema)?;
            }
        }
        // A load's statements are short and many (a key probe per chunk): compiling each
        // costs more than it saves.
        exec(&mut client, "cannot set up the load's session", "SET jit = off")?;
        exec(&mut client, "cannot start the load transaction", "BEGIN")?;
        let held = lock_table(&mut client, ds, schema, mode)?;
        // A keyed append into tables that hold rows stages the file and looks its keys up in
        // one pass (`keyed`): looking each chunk's up at random in an index beyond the
        // server's buffers took half as long again (docs/performance.md).
        let stages_append = mode == Mode::Append && !lake && held.iter().any(|h| *h);
        if let (true, Some(sum)) = (mode.keeps_rows(), append_checksum) {
            // The file too: the same file never loads twice at once.
            client
                .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&format!("tier:{schema}.{}:{sum}", ds.name)])
                .map_err(|e| Failure::Database(format!("cannot lock {}: {}", ds.name, describe(&e))))?;
            if !force {
                refuse_loaded(&mut client, schema, &ds.name, source_file, sum)?;
            }
        }
        let rejects_target = rejects_target(&mut client, ds, schema, mode)?;
        let mut targets = Vec::new();
        for (i, (t, held)) in tables.into_iter().zip(held).enumerate() {
            let probe_keys = held && !stages_append;
            let data = data_target(&mut client, t, i, schema, mode, probe_keys, stages_append)?;
            // A keyed append's own tables were asked under the lock (`lock_table`); others here.
            let asked = mode == Mode::Append && !t.unique.is_empty() && !t.is_child();
            let index_after = matches!(mode, Mode::Append | Mode::Merge)
                && !t.unique.is_empty()
                && if asked { !held } else { is_empty(&mut client, schema, t)? };
            if index_after {
                super::ddl::drop_key_index(&mut client, t, schema)?;
            }
            targets.push(Target { ds: t, data, probe_keys, held_keys: held && stages_append, index_after });
        }
        let mut schema_changes = Vec::new();
        for t in &targets {
            schema_changes.extend(add_evolved_columns(&mut client, t.ds, schema, mode)?);
        }
        let load_id = next_load_id(&mut client, schema)?;
        Ok(TableLoad {
            client,
            ds,
            targets,
            schema: schema.to_string(),
            mode,
            load_id,
            source_file: source_file.to_string(),
            started: SystemTime::now(),
            rejects_target,
            buf: Vec::new(),
            schema_changes,
            merged: false,
            stages_append,
        })
    }

    /// COPYs one chunk's accepted rows and rejects, in a statement each (for loads that
    /// use the connection between chunks; the others stream, see `copy_stream`).
    /// `table` is the index of the table the rows go to (`Dataset::tables`).
    pub fn write(&mut self, table: usize, accepted: &DataFrame, rejects: &[Reject]) -> Result<()> {
        if accepted.height() > 0 {
            self.buf.clear();
            copy::header(&mut self.buf);
            self.row_encoder(table).encode(accepted, &mut self.buf)?;
            copy::trailer(&mut self.buf);
            let sql = self.rows_copy_sql(table);
            copy_in(&mut self.client, &sql, &self.buf).with_context(|| format!("COPY into {} failed", self.targets[table].ds.name))?;
        }
        self.write_rejects(rejects)
    }

    /// The statement that COPYs rows into a data table (a merge's stage adds the record).
    fn rows_copy_sql(&self, table: usize) -> String {
        let target = &self.targets[table];
        let mut columns: Vec<String> = target.ds.column_names().map(ident).chain(["load_id".to_string()]).collect();
        if self.stages() {
            columns.push("__record".into());
        }
        format!("COPY {} ({}) FROM STDIN (FORMAT binary)", target.data, columns.join(", "))
    }

    /// What turns this load's rows of a table into binary COPY rows, for another thread.
    pub fn row_encoder(&self, table: usize) -> RowEncoder {
        RowEncoder { ds: self.targets[table].ds, load_id: self.load_id, staged: self.stages() }
    }

    /// Whether rows go to a temporary stage first, with their record (a merge, a staged
    /// keyed append).
    fn stages(&self) -> bool {
        self.mode == Mode::Merge || self.stages_append
    }

    /// Whether the load looks keys up in a table between chunks (a keyed append into a
    /// table that held rows), so its rows cannot stream through one open COPY.
    pub fn looks_up_keys(&self) -> bool {
        self.targets.iter().any(|t| t.probe_keys)
    }

    /// The lake's catalog row of `table` (namespace: the load's schema, whose catalog tables
    /// are there too), in the load's transaction.
    pub fn catalog_row(&mut self, catalog: &str, table: &str) -> Result<crate::pg::lake_catalog::CatalogRow<'_>> {
        crate::pg::lake_catalog::CatalogRow::open(&mut self.client, &self.schema, catalog, &self.schema, table)
    }

    /// Rows encoded by `row_encoder` on another thread, streamed into the data table through
    /// one COPY that stays open while `pieces` arrive, each sent as it comes; ends when the
    /// sender hangs up. Each piece's buffer goes back through `spent` to be filled again.
    ///
    /// A COPY per chunk made the server wait while the next chunk was encoded, and this side
    /// wait while the server ingested (the statement ends only once every row is in): the
    /// two took turns. Here the server ingests one piece while the next is encoded.
    ///
    /// Pieces come with their table (`Dataset::tables`): a piece of another table ends the
    /// open COPY and starts one into that table (a split log's chunk holds each kind's rows
    /// together, so that is a few times a chunk).
    pub fn copy_stream(&mut self, pieces: Receiver<(usize, Vec<u8>)>, spent: Sender<Vec<u8>>) -> Result<()> {
        let (mut header, mut trailer) = (Vec::new(), Vec::new());
        copy::header(&mut header);
        copy::trailer(&mut trailer);
        let statements: Vec<String> = (0..self.targets.len()).map(|t| self.rows_copy_sql(t)).collect();
        let names: Vec<String> = self.targets.iter().map(|t| t.ds.name.clone()).collect();
        let mut next = pieces.recv().ok();
        // One COPY per run of pieces of one table.
        while let Some((table, first)) = next.take() {
            let failed = || format!("COPY into {} failed", names[table]);
            let mut w = self.client.copy_in(&statements[table]).map_err(|e| Failure::Database(describe(&e))).with_context(failed)?;
            w.write_all(&header).map_err(copy_failed).with_context(failed)?;
            let mut piece = first;
            loop {
                // Flushed piece by piece: the write returns once the connection took the
                // piece, so the socket is kept busy for as long as pieces come.
                w.write_all(&piece).and_then(|()| w.flush()).map_err(copy_failed).with_context(failed)?;
                piece.clear();
                let _ = spent.send(piece);
                match pieces.recv() {
                    Ok((t, p)) if t == table => piece = p,
                    Ok(other) => {
                        next = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
            w.write_all(&trailer).map_err(copy_failed).with_context(failed)?;
            let clock = std::time::Instant::now();
            w.finish().map_err(|e| Failure::Database(describe(&e))).with_context(failed)?;
            tracing::debug!("COPY into {} ended in {:.2?}", names[table], clock.elapsed());
        }
        Ok(())
    }

    /// A temporary file for the rejects of rows that stream (`copy_stream`), written with
    /// `write_spooled_rejects` once the rows' COPY is over.
    pub fn reject_spool(&self) -> Result<RejectSpool> {
        let file = tempfile::tempfile().map_err(|e| {
            Failure::Input(format!("cannot create a temporary file for rejects in {}: {e}", std::env::temp_dir().display()))
        })?;
        Ok(RejectSpool {
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            load_id: self.load_id,
            source_file: self.source_file.clone(),
            rows: 0,
            block: Vec::new(),
        })
    }

    /// COPYs the rejects a spool holds, reading the file back in blocks.
    pub fn write_spooled_rejects(&mut self, spool: RejectSpool) -> Result<()> {
        if spool.rows == 0 {
            return Ok(());
        }
        let spooled = |e: std::io::Error| Failure::Input(format!("the rejects' temporary file failed: {e}"));
        let mut file = spool.file.into_inner().map_err(|e| spooled(e.into_error()))?;
        file.seek(std::io::SeekFrom::Start(0)).map_err(spooled)?;
        let sql = self.rejects_copy_sql();
        let failed = || format!("COPY into {} failed", self.ds.rejects_table());
        let mut w = self.client.copy_in(&sql).map_err(|e| Failure::Database(describe(&e))).with_context(failed)?;
        let (mut header, mut trailer) = (Vec::new(), Vec::new());
        copy::header(&mut header);
        copy::trailer(&mut trailer);
        w.write_all(&header).map_err(copy_failed).with_context(failed)?;
        std::io::copy(&mut std::io::BufReader::with_capacity(1 << 20, file), &mut w).map_err(copy_failed).with_context(failed)?;
        w.write_all(&trailer).map_err(copy_failed).with_context(failed)?;
        w.finish().map_err(|e| Failure::Database(describe(&e))).with_context(failed)?;
        Ok(())
    }

    /// An object whose URL, ETag and size the ledger holds as loaded is refused (unless
    /// --force) before a byte of it is read; its URL is locked as a file's checksum is.
    pub fn refuse_loaded_object(&mut self, url: &str, etag: Option<&str>, size: u64) -> Result<()> {
        let key = format!("tier:{}.{}:{url}", self.schema, self.ds.name);
        self.client
            .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key])
            .map_err(|e| Failure::Database(format!("cannot lock {}: {}", self.ds.name, describe(&e))))?;
        let row = object_load(&mut self.client, &self.schema, &self.ds.name, url, etag, size)?;
        match row {
            Some(id) => Err(Failure::AlreadyLoaded(format!(
                "{url}: already loaded into {} (load {id}, same ETag and size); use --force to load it again",
                self.ds.name
            ))
            .into()),
            None => Ok(()),
        }
    }

    /// A file or object whose checksum the ledger holds as loaded is refused (the check for
    /// an object, whose checksum is known only once it has been read).
    pub fn refuse_loaded_checksum(&mut self, checksum: &str) -> Result<()> {
        refuse_loaded(&mut self.client, &self.schema, &self.ds.name, &self.source_file, checksum)
    }

    /// For a keyed append: the rows of `accepted` whose key the table already holds, as
    /// (record, the load that holds it). Looked up one key at a time through the key's index
    /// (a hash join would read the whole table for every chunk).
    pub fn keys_already_loaded(&mut self, table: usize, accepted: &DataFrame) -> Result<Vec<(u64, i64)>> {
        let target = &self.targets[table];
        if !target.probe_keys || accepted.height() == 0 {
            return Ok(Vec::new());
        }
        let (ds, probe) = (target.ds, key_probe(table));
        self.buf.clear();
        copy::header(&mut self.buf);
        copy::encode_keys(ds, accepted, &mut self.buf)?;
        copy::trailer(&mut self.buf);
        let keys: Vec<String> = ds.unique.iter().map(|k| ident(k)).collect();
        copy_in(&mut self.client, &format!("COPY {probe} ({}, __record) FROM STDIN (FORMAT binary)", keys.join(", ")), &self.buf)?;
        let on: Vec<String> = keys.iter().map(|k| format!("t.{k} = k.{k}")).collect();
        // One index lookup per key, in key order (neighbouring keys share index pages). A
        // scalar subquery in the select list and its filter ran the lookup twice per key.
        let sql = format!(
            "SELECT k.__record, h.load_id FROM (SELECT * FROM {probe} ORDER BY {keys}) k
             CROSS JOIN LATERAL (SELECT t.load_id FROM {} t WHERE {} LIMIT 1) h",
            self.targets[table].data,
            on.join(" AND "),
            keys = keys.join(", ")
        );
        let rows = self.client.query(&sql, &[]).map_err(|e| Failure::Database(format!("cannot look up keys: {}", describe(&e))))?;
        exec(&mut self.client, "cannot clear the key probe", &format!("TRUNCATE {probe}"))?;
        Ok(rows.iter().map(|r| (r.get::<_, i64>(0) as u64, r.get(1))).collect())
    }

    /// A staged keyed append, once every row of the file is staged: the rows go in, less
    /// the records whose key the table holds (`keyed::settle`). Nothing to do for other loads.
    pub fn settle(&mut self) -> Result<Settled> {
        let stages: Vec<super::keyed::Stage> = self
            .targets
            .iter()
            .map(|t| super::keyed::Stage { ds: t.ds, stage: &t.data, held_keys: t.held_keys, ordered: !t.index_after })
            .collect();
        match self.stages_append {
            true => super::keyed::settle(&mut self.client, &self.schema, &stages),
            false => Ok(Settled::nothing(&stages)),
        }
    }

    /// Takes back staged rows a later row with their key superseded (by record), and their
    /// child rows; the caller keeps them as rejects.
    pub fn retract(&mut self, records: &[u64]) -> Result<Retracted> {
        let records: Vec<i64> = records.iter().map(|r| *r as i64).collect();
        let failed = |e: postgres::Error| Failure::Database(format!("cannot take back superseded rows: {}", describe(&e)));
        let mut out = Retracted::default();
        for (i, t) in self.targets.iter().enumerate() {
            let stage = &t.data;
            if !t.ds.is_child() {
                let sql = format!("DELETE FROM {stage} WHERE __record = ANY($1) RETURNING __record");
                for r in self.client.query(&sql, &[&records]).map_err(failed)? {
                    out.records.push((r.get::<_, i64>(0) as u64, i));
                }
                continue;
            }
            let cols: Vec<String> = t.ds.column_names().map(|c| format!("m.{}", ident(c))).collect();
            let sql = format!(
                "DELETE FROM {stage} m WHERE __record = ANY($1) RETURNING {day}, hash_record_extended(ROW({cols}), {seed})",
                day = super::catalog::day_sql(t.ds, "m"),
                cols = cols.join(", "),
                seed = crate::figures::ROW_HASH_SEED,
            );
            for r in self.client.query(&sql, &[&records]).map_err(failed)? {
                let day: Option<i32> = r.get(0);
                out.children.push((i, day.map_or(crate::figures::NO_DAY, i64::from), r.get::<_, i64>(1) as u64));
            }
        }
        if out.records.len() != records.len() {
            return Err(anyhow::anyhow!("took back {} staged rows for {} superseded records", out.records.len(), records.len()));
        }
        Ok(out)
    }

    pub fn write_rejects(&mut self, rejects: &[Reject]) -> Result<()> {
        if !rejects.is_empty() {
            self.buf.clear();
            copy::header(&mut self.buf);
            copy::encode_rejects(rejects, self.load_id, &self.source_file, &mut self.buf);
            copy::trailer(&mut self.buf);
            let sql = self.rejects_copy_sql();
            copy_in(&mut self.client, &sql, &self.buf).with_context(|| format!("COPY into {} failed", self.ds.rejects_table()))?;
        }
        Ok(())
    }

    /// Rejects found after the rows (a keyed append's repeats, a merge's superseded rows),
    /// through one COPY as `produce` hands them over: the server stores them while the next
    /// are read (a COPY per batch made the two take turns).
    pub fn stream_rejects(&mut self, produce: impl FnOnce(&mut dyn FnMut(Reject) -> Result<()>) -> Result<()>) -> Result<()> {
        let sql = self.rejects_copy_sql();
        let failed = || format!("COPY into {} failed", self.ds.rejects_table());
        let (load_id, source_file) = (self.load_id, self.source_file.clone());
        let mut w = self.client.copy_in(&sql).map_err(|e| Failure::Database(describe(&e))).with_context(failed)?;
        let mut buf = Vec::with_capacity(1 << 20);
        copy::header(&mut buf);
        let mut push = |reject: Reject| -> Result<()> {
            copy::encode_rejects(std::slice::from_ref(&reject), load_id, &source_file, &mut buf);
            if buf.len() >= 1 << 20 {
                w.write_all(&buf).map_err(copy_failed)?;
                buf.clear();
            }
            Ok(())
        };
        produce(&mut push).with_context(failed)?;
        copy::trailer(&mut buf);
        w.write_all(&buf).map_err(copy_failed).with_context(failed)?;
        w.finish().map_err(|e| Failure::Database(describe(&e))).with_context(failed)?;
        Ok(())
    }

    fn rejects_copy_sql(&self) -> String {
        format!(
            "COPY {} (load_id, source_file, line, record, reason, detail, raw, raw_bytes) FROM STDIN (FORMAT binary)",
            self.rejects_target
        )
    }

    /// Merges each table's staged rows: a table on its key; a child table on its parent's key
    /// and position, after deleting the rows of the merged parents' arrays that are no more
    /// (children of an updated parent are replaced with it).
    /// Once only: the commit merges unless this was called before it.
    pub fn merge(&mut self, stats: &mut LoadStats) -> Result<()> {
        if std::mem::replace(&mut self.merged, true) {
            return Ok(());
        }
        let mut root = 0;
        let mut total = crate::stats::Merged::default();
        for (i, t) in self.targets.iter().enumerate() {
            if !t.ds.is_child() {
                root = i;
            }
            let merged = match t.ds.is_child() {
                false => super::merge::merge_staged(&mut self.client, t.ds, &self.schema, &t.data, t.index_after)?,
                true => {
                    super::merge::merge_children(&mut self.client, t.ds, &self.schema, &t.data, &self.targets[root].data, t.index_after)?
                }
            };
            match self.targets.len() {
                1 => stats.merged = Some(merged),
                _ => {
                    if !t.ds.is_child() {
                        (total.inserted, total.updated, total.unchanged) =
                            (total.inserted + merged.inserted, total.updated + merged.updated, total.unchanged + merged.unchanged);
                    }
                    stats.tables[i].merged = Some(merged);
                }
            }
        }
        if self.targets.len() > 1 {
            stats.merged = Some(total);
        }
        Ok(())
    }

    /// Swaps the staging tables in (replace), records the load in the ledger and commits.
    ///
    /// The old tables are renamed aside, not dropped, inside the transaction: a query that
    /// started before the commit and waits on the swap's lock then reads the old table
    /// instead of failing on a dropped one. They are dropped after the commit (and, should
    /// that not happen, at the start of the next load), by the `AfterCommit` returned.
    /// The contract's declared checks over the table as this load leaves it: a failing one
    /// undoes the load (its evaluations are kept, after the rollback), a warning goes into
    /// the summary and the ledger.
    /// The days (`YYYY-MM-DD`) of a table's rows this load wrote, where its figures are
    /// exactly those rows (a replace, an append without a key: no row turned away, none
    /// merged into rows already there); `None`: the server is asked.
    fn days_loaded(&self, table: &Dataset, stats: &LoadStats) -> Option<Vec<String>> {
        use crate::figures::{MICROS_PER_DAY, NO_DAY};
        let exact = self.mode == Mode::Replace || (self.mode == Mode::Append && table.unique.is_empty());
        let figures = match stats.tables.is_empty() {
            true => stats.figures.as_ref(),
            false => stats.tables.iter().find(|t| t.table == table.name)?.figures.as_ref(),
        };
        let days = figures.filter(|_| exact)?.days.keys().filter(|&&day| day != NO_DAY);
        Some(days.map(|&day| crate::values::timestamp::day_of_micros(day * MICROS_PER_DAY)).collect())
    }

    fn gate(&mut self, stats: &mut LoadStats) -> Result<()> {
        use crate::checks::Outcome;
        let mut evaluations = Vec::new();
        for table in self.ds.checked() {
            let days = self.days_loaded(table, stats);
            evaluations.extend(super::checks::evaluate_gate(&mut self.client, table, &self.schema, self.load_id, days)?);
        }
        if evaluations.is_empty() {
            return Ok(());
        }
        // A split log's checks are each a table's: say which.
        let many = self.ds.writes_many();
        let said = |e: &crate::checks::Evaluation| {
            let table = if many { format!("{}: ", e.dataset) } else { String::new() };
            match &e.group {
                Some(day) => format!("{table}{:?} on {day}: {}", e.check, e.detail),
                None => format!("{table}{:?}: {}", e.check, e.detail),
            }
        };
        let failed: Vec<String> = evaluations.iter().filter(|e| e.outcome == Outcome::Fail).map(said).collect();
        if !failed.is_empty() {
            exec(&mut self.client, "cannot roll the load back", "ROLLBACK")?;
            if let Err(e) = super::checks::record(&mut self.client, &self.schema, &evaluations, Some(self.load_id)) {
                tracing::warn!("the failed checks could not be kept in {}: {e:#}", super::checks::HISTORY);
            }
            return Err(Failure::Input(format!(
                "{}: check {} failed; the table is left as it was{}",
                self.ds.name,
                failed[0],
                if failed.len() > 1 { format!(" ({} more failed)", failed.len() - 1) } else { String::new() }
            ))
            .into());
        }
        stats.check_warnings = evaluations.iter().filter(|e| e.outcome == Outcome::Warn).map(said).collect();
        super::checks::record(&mut self.client, &self.schema, &evaluations, Some(self.load_id))
    }

    pub fn commit(mut self, stats: &mut LoadStats) -> Result<AfterCommit> {
        let s = ident(&self.schema);
        let mut aside = Vec::new();
        if self.mode == Mode::Merge {
            self.merge(stats)?;
        }
        stats.schema_changes = std::mem::take(&mut self.schema_changes);
        if self.mode == Mode::Replace {
            let swaps = self.targets.iter().map(|t| (t.ds.name.clone(), &t.data)).chain([(self.ds.rejects_table(), &self.rejects_target)]);
            for (live, staged) in swaps {
                let views: i64 = self
                    .client
                    .query_one(
                        "SELECT count(DISTINCT r.ev_class) FROM pg_depend d JOIN pg_rewrite r ON d.objid = r.oid
                         WHERE d.refobjid = to_regclass($1) AND r.ev_class <> d.refobjid",
                        &[&format!("{s}.{}", ident(&live))],
                    )
                    .map_err(|e| Failure::Database(describe(&e)))?
                    .get(0);
                if views > 0 {
                    return Err(Failure::Database(format!(
                        "{views} view(s) depend on {live}; replacing the table would leave them on the old rows. \
                         Drop them (and recreate them after the load), or use --mode append"
                    ))
                    .into());
                }
                let old = ident(&format!("{live}{OLD_SUFFIX}"));
                let live_q = ident(&live);
                let swap = format!(
                    "DROP TABLE IF EXISTS {s}.{old};
                     ALTER TABLE IF EXISTS {s}.{live_q} RENAME TO {old};
                     ALTER TABLE {staged} RENAME TO {live_q};"
                );
                exec(&mut self.client, &format!("cannot swap in the new {live}"), &swap)?;
                aside.push(format!("{s}.{old}"));
            }
            mark_replaced(&mut self.client, &self.schema, &self.ds.name)?;
        }
        for t in self.targets.iter().filter(|t| t.index_after) {
            super::ddl::ensure_key_index(&mut self.client, t.ds, &self.schema)?;
        }
        if let Some(range) = &stats.offsets {
            super::ledger::claim_offsets(&mut self.client, &self.schema, &self.ds.name, range)?;
        }
        self.gate(stats)?;
        insert_ledger(&mut self.client, &self.schema, Some(self.load_id), stats, self.mode, self.started, "ok", None)?;
        exec(&mut self.client, "commit failed", "COMMIT")?;
        let mut tidy = AfterCommit { client: self.client, table: self.ds.name.clone(), analyze: None, drop: None };
        if self.mode == Mode::Replace {
            let tables: Vec<String> = self.targets.iter().map(|t| format!("{s}.{}", ident(&t.ds.name))).collect();
            tidy.analyze = Some(format!("ANALYZE {}", tables.join(", ")));
            tidy.drop = Some(format!("DROP TABLE IF EXISTS {}", aside.join(", ")));
        }
        Ok(tidy)
    }
}

/// What follows a replace's commit: the new table's planner statistics (ANALYZE, which
/// reads a sample of every column and took a tenth of a million-row load) and dropping the
/// tables swapped out. Neither changes what the table holds, so it can run while the next
/// file loads; a failure is a warning (autovacuum analyzes a new table on its own, and the
/// next load drops leftover tables).
pub struct AfterCommit {
    client: Client,
    table: String,
    analyze: Option<String>,
    drop: Option<String>,
}

impl AfterCommit {
    /// Nothing to do (an append or a merge): the connection just closes.
    pub fn is_empty(&self) -> bool {
        self.analyze.is_none() && self.drop.is_none()
    }

    pub fn run(mut self) {
        if let Some(sql) = &self.analyze {
            if let Err(e) = exec(&mut self.client, "ANALYZE failed", sql) {
                tracing::warn!("{} is loaded, but its statistics were not updated ({e:#}); autovacuum will", self.table);
            }
        }
        if let Some(sql) = &self.drop {
            if let Err(e) = exec(&mut self.client, "dropping the previous tables", sql) {
                tracing::warn!("the load is committed, but the previous tables were not dropped ({e:#}); the next load drops them");
            }
        }
    }
}

/// Turns a load's rows into binary COPY rows (see `TableLoad::copy_stream`).
#[derive(Clone, Copy)]
pub struct RowEncoder {
    ds: &'static Dataset,
    load_id: i64,
    staged: bool,
}

impl RowEncoder {
    /// Appends `rows` to `out`, without the COPY header or trailer.
    pub fn encode(&self, rows: &DataFrame, out: &mut Vec<u8>) -> polars::prelude::PolarsResult<()> {
        copy::encode_rows(self.ds, rows, self.load_id, self.staged, out)
    }
}

/// A COPY that failed while its data was sent: the server's own message is inside the I/O
/// error; any other I/O error is this side's (reading the rejects' temporary file).
fn copy_failed(e: std::io::Error) -> Failure {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<postgres::Error>()) {
        Some(pg) => Failure::Database(format!("connection lost during COPY: {}", describe(pg))),
        None => Failure::Input(format!("COPY's data could not be read: {e}")),
    }
}

fn copy_in(client: &mut Client, sql: &str, bytes: &[u8]) -> Result<()> {
    let mut w = client.copy_in(sql).map_err(|e| Failure::Database(describe(&e)))?;
    w.write_all(bytes).map_err(copy_failed)?;
    w.finish().map_err(|e| Failure::Database(describe(&e)))?;
    Ok(())
}

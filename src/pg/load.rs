//! One table's load as one transaction: binary COPY into a staging table (replace, merge)
//! or the table itself (append), rejects beside it, a ledger row, then commit.
//!
//! A merge stages its rows in a temporary table, then merges them on the dataset's key
//! (behind a unique index the load creates and keeps): new keys are inserted, changed rows
//! updated (taking this load's id), equal rows left alone; nothing is deleted.
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

use super::catalog::table_columns;
use super::connect::{describe, exec, ident};
use super::copy::{self, Reject};
use crate::dataset::Dataset;
use crate::error::Failure;
use crate::figures::{Day, Figures};
use crate::stats::{unix_seconds, LoadStats, Merged, SchemaChange};

pub use crate::dataset::Mode;

use crate::dataset::LEDGER;
const STAGING_SUFFIX: &str = "__tier_new";
/// The replaced tables, between the swap and their drop just after the commit.
const OLD_SUFFIX: &str = "__tier_old";
/// A merge's staged rows (a temporary table, dropped at the end of the transaction).
const MERGE_STAGE: &str = "pg_temp.tier_merge";
/// A keyed append's keys of one chunk, looked up in the table (temporary, as above).
const KEY_PROBE: &str = "pg_temp.tier_keys";

/// Column definitions of a dataset's table, from its declaration.
pub fn table_ddl(ds: &Dataset) -> String {
    let mut cols: Vec<String> = ds
        .fields
        .iter()
        .map(|f| format!("{} {}{}", ident(&f.name), f.kind.sql_type(), if f.required { " NOT NULL" } else { "" }))
        .collect();
    cols.push("load_id bigint NOT NULL".into());
    cols.join(",\n  ")
}

/// Brings an existing table in line with a contract that grew: declared columns it lacks are
/// added (nullable: the rows already there have no value), a declared column of another type
/// is an error that names both. Columns the contract does not declare are left alone
/// (`validate` reports them). Returns the columns added.
fn add_declared_columns(client: &mut Client, ds: &Dataset, schema: &str) -> Result<Vec<String>> {
    let existing = table_columns(client, schema, &ds.name)?;
    let mut added = Vec::new();
    // Columns for new keys (`on_new_key = "evolve"`) are added in the load's own transaction.
    for f in ds.fields.iter().filter(|f| !f.evolved) {
        match existing.iter().find(|(name, _)| *name == f.name) {
            Some((_, ty)) if ty != f.kind.catalog_type() => {
                return Err(Failure::Input(format!(
                    "{}.{} is {ty} in the table but {} in {}; change the contract, or load with --mode replace",
                    ds.name,
                    f.name,
                    f.kind.name(),
                    ds.source
                ))
                .into())
            }
            Some(_) => {}
            None => {
                exec(
                    client,
                    &format!("cannot add column {} to {}", f.name, ds.name),
                    &format!("ALTER TABLE {}.{} ADD COLUMN {} {}", ident(schema), ident(&ds.name), ident(&f.name), f.kind.sql_type()),
                )?;
                tracing::info!("{}: added column {} ({}), declared in {}", ds.name, f.name, f.kind.name(), ds.source);
                added.push(f.name.clone());
            }
        }
    }
    Ok(added)
}

/// `record` is the record's ordinal in its file (a line may hold many records); tables
/// made before it was added get it, empty for their older rows.
pub const REJECTS_DDL: &str = "load_id bigint NOT NULL,
  source_file text NOT NULL,
  line bigint NOT NULL,
  record bigint,
  reason text NOT NULL,
  detail text,
  raw text NOT NULL,
  raw_bytes bytea";

/// Creates the schema and the ledger if missing (under a lock: concurrent
/// `CREATE ... IF NOT EXISTS` can otherwise collide).
pub fn ensure_ledger(client: &mut Client, schema: &str) -> Result<()> {
    let s = ident(schema);
    // The schema is created only when it is missing: `CREATE SCHEMA IF NOT EXISTS` asks for
    // the right to create schemas in the database even when the schema is there, which a
    // role that owns its schema may well not have.
    exec(client, "cannot create the load ledger", "BEGIN; SELECT pg_advisory_xact_lock(hashtext('tier:ddl'))")?;
    let missing = client
        .query_one("SELECT to_regnamespace($1) IS NULL", &[&s])
        .map_err(|e| Failure::Database(format!("cannot create the load ledger: {}", describe(&e))))?
        .get::<_, bool>(0);
    if missing {
        exec(client, "cannot create the load ledger", &format!("CREATE SCHEMA IF NOT EXISTS {s}"))?;
    }
    exec(
        client,
        "cannot create the load ledger",
        &format!(
            "CREATE TABLE IF NOT EXISTS {s}.{LEDGER} (
               id bigserial PRIMARY KEY,
               table_name text NOT NULL,
               file text NOT NULL,
               file_size bigint,
               checksum text,
               started_at timestamptz NOT NULL,
               finished_at timestamptz,
               records bigint,
               loaded bigint,
               rejected bigint,
               rejected_by_reason jsonb,
               warnings jsonb,
               mode text NOT NULL,
               tool_version text NOT NULL,
               status text NOT NULL,
               error text
             );
             -- The per-day figures validate compares (added after the first release).
             ALTER TABLE {s}.{LEDGER} ADD COLUMN IF NOT EXISTS figures jsonb;
             -- What a merge did with its rows (added with merges).
             ALTER TABLE {s}.{LEDGER} ADD COLUMN IF NOT EXISTS inserted bigint,
               ADD COLUMN IF NOT EXISTS updated bigint, ADD COLUMN IF NOT EXISTS unchanged bigint;
             -- Columns a load added for new keys: objects of column, type and key.
             ALTER TABLE {s}.{LEDGER} ADD COLUMN IF NOT EXISTS schema_changes jsonb;
             -- An object's ETag, for loads from object storage (file is then its URL).
             ALTER TABLE {s}.{LEDGER} ADD COLUMN IF NOT EXISTS etag text;
             COMMIT;"
        ),
    )
}

pub struct TableLoad {
    client: Client,
    ds: &'static Dataset,
    schema: String,
    mode: Mode,
    pub load_id: i64,
    source_file: String,
    started: SystemTime,
    data_target: String,
    rejects_target: String,
    buf: Vec<u8>,
    /// Columns this load adds for new keys.
    schema_changes: Vec<SchemaChange>,
    /// A keyed append into a table that held rows: keys are looked up chunk by chunk.
    probe_keys: bool,
}

impl TableLoad {
    /// Opens the load's transaction and takes the table's lock. In append mode, refuses
    /// a file whose checksum the ledger already holds for this table, unless `force`.
    pub fn begin(
        mut client: Client,
        ds: &'static Dataset,
        schema: &str,
        mode: Mode,
        source_file: &str,
        append_checksum: Option<&str>,
        force: bool,
    ) -> Result<Self> {
        ensure_ledger(&mut client, schema)?;
        let s = ident(schema);
        let (table, rejects) = (ds.name.to_string(), ds.rejects_table());
        let ddl = table_ddl(ds);
        if mode.keeps_rows() {
            // Created in a transaction of their own, under the DDL lock, so that appends of
            // different files can run side by side.
            exec(
                &mut client,
                "cannot create the tables",
                &format!(
                    "BEGIN; SELECT pg_advisory_xact_lock(hashtext('tier:ddl'));
                     CREATE TABLE IF NOT EXISTS {s}.{} (\n  {ddl}\n);
                     CREATE TABLE IF NOT EXISTS {s}.{} (\n  {REJECTS_DDL}\n);
                     ALTER TABLE {s}.{1} ADD COLUMN IF NOT EXISTS record bigint;",
                    ident(&table),
                    ident(&rejects)
                ),
            )?;
            // Still under the DDL lock: a contract that grew adds its columns once.
            let mut added = add_declared_columns(&mut client, ds, schema).map(drop);
            // Merges and keyed appends look keys up in the key's unique index (and two loads
            // of one new key at once cannot both commit it).
            if added.is_ok() && !ds.unique.is_empty() {
                added = ensure_key_index(&mut client, ds, schema);
            }
            exec(&mut client, "cannot create the tables", if added.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
            added?;
        }
        exec(&mut client, "cannot start the load transaction", "BEGIN")?;
        // The table's key: a replace takes it exclusively, an unkeyed append shared, so a replace
        // waits for running appends and appends wait for a running replace (an append that
        // committed into the table a replace then swaps out would be in the ledger as `ok`
        // with its rows gone). Appends also lock their file, so different files load side
        // by side (unkeyed, see below) while the same file never loads twice at once.
        let table_key = format!("tier:{schema}.{table}");
        // A merge excludes the others too: the rows it compares must not change under it.
        // So does a keyed append: the keys of an append running beside it would be invisible
        // to its lookups until that one commits, and the key's unique index would then fail
        // the later of the two at its COPY instead of turning the repeated keys away.
        let keyed_append = mode == Mode::Append && !ds.unique.is_empty();
        let table_lock = match mode == Mode::Append && !keyed_append {
            true => "SELECT pg_advisory_xact_lock_shared(hashtext($1))",
            false => "SELECT pg_advisory_xact_lock(hashtext($1))",
        };
        client.execute(table_lock, &[&table_key]).map_err(|e| Failure::Database(format!("cannot lock {table}: {}", describe(&e))))?;
        // Into an empty table (asked under the lock, so no load can add rows meanwhile) no key
        // can have been loaded before: the rows stream through one COPY instead of looking
        // their keys up chunk by chunk (the duplicate check keeps keys unique within a file).
        let probe_keys = keyed_append
            && client
                .query_one(&format!("SELECT EXISTS (SELECT FROM {s}.{})", ident(&table)), &[])
                .map_err(|e| Failure::Database(describe(&e)))?
                .get::<_, bool>(0);
        if let (true, Some(sum)) = (mode.keeps_rows(), append_checksum) {
            client
                .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&format!("{table_key}:{sum}")])
                .map_err(|e| Failure::Database(format!("cannot lock {table}: {}", describe(&e))))?;
        }
        if let (true, Some(sum), false) = (mode.keeps_rows(), append_checksum, force) {
            let row = client
                .query_opt(
                    &format!("SELECT id, file FROM {s}.{LEDGER} WHERE table_name = $1 AND checksum = $2 AND status = 'ok' LIMIT 1"),
                    &[&table, &sum],
                )
                .map_err(|e| Failure::Database(describe(&e)))?;
            if let Some(row) = row {
                let (id, file): (i64, String) = (row.get(0), row.get(1));
                return Err(Failure::AlreadyLoaded(format!(
                    "{source_file}: already loaded into {table} (load {id}, from {file}, same checksum); use --force to load it again"
                ))
                .into());
            }
        }
        let (data_target, rejects_target) = match mode {
            Mode::Replace => {
                let (t, r) = (
                    format!("{s}.{}", ident(&format!("{table}{STAGING_SUFFIX}"))),
                    format!("{s}.{}", ident(&format!("{rejects}{STAGING_SUFFIX}"))),
                );
                exec(
                    &mut client,
                    "cannot create the staging tables",
                    &format!("DROP TABLE IF EXISTS {t}; DROP TABLE IF EXISTS {r}; CREATE TABLE {t} (\n  {ddl}\n); CREATE TABLE {r} (\n  {REJECTS_DDL}\n);"),
                )?;
                (t, r)
            }
            Mode::Append => {
                if probe_keys {
                    let keys: Vec<String> =
                        ds.unique.iter().filter_map(|k| ds.field(k)).map(|f| format!("{} {}", ident(&f.name), f.kind.sql_type())).collect();
                    exec(
                        &mut client,
                        "cannot create the key probe",
                        &format!(
                            "DROP TABLE IF EXISTS {KEY_PROBE}; CREATE TEMP TABLE tier_keys ({}, __record bigint) ON COMMIT DROP",
                            keys.join(", ")
                        ),
                    )?;
                }
                (format!("{s}.{}", ident(&table)), format!("{s}.{}", ident(&rejects)))
            }
            Mode::Merge => {
                exec(
                    &mut client,
                    "cannot create the merge's staging table",
                    &format!(
                        "DROP TABLE IF EXISTS {MERGE_STAGE}; CREATE TEMP TABLE tier_merge (\n  {ddl},\n  __record bigint\n) ON COMMIT DROP"
                    ),
                )?;
                (MERGE_STAGE.to_string(), format!("{s}.{}", ident(&rejects)))
            }
        };
        let schema_changes = add_evolved_columns(&mut client, ds, schema, mode)?;
        let load_id: i64 = client
            .query_one(&format!("SELECT nextval(pg_get_serial_sequence('{}.{LEDGER}', 'id'))", s.replace('\'', "''")), &[])
            .map_err(|e| Failure::Database(describe(&e)))?
            .get(0);
        Ok(TableLoad {
            client,
            ds,
            schema: schema.to_string(),
            mode,
            load_id,
            source_file: source_file.to_string(),
            started: SystemTime::now(),
            data_target,
            rejects_target,
            buf: Vec::new(),
            schema_changes,
            probe_keys,
        })
    }

    /// COPYs one chunk's accepted rows and rejects, in a statement each (for loads that
    /// use the connection between chunks; the others stream, see `copy_stream`).
    pub fn write(&mut self, accepted: &DataFrame, rejects: &[Reject]) -> Result<()> {
        if accepted.height() > 0 {
            self.buf.clear();
            copy::header(&mut self.buf);
            self.row_encoder().encode(accepted, &mut self.buf)?;
            copy::trailer(&mut self.buf);
            let sql = self.rows_copy_sql();
            copy_in(&mut self.client, &sql, &self.buf).with_context(|| format!("COPY into {} failed", self.ds.name))?;
        }
        self.write_rejects(rejects)
    }

    /// The statement that COPYs rows into the data table (a merge's stage adds the record).
    fn rows_copy_sql(&self) -> String {
        let mut columns: Vec<String> = self.ds.column_names().map(ident).chain(["load_id".to_string()]).collect();
        if self.mode == Mode::Merge {
            columns.push("__record".into());
        }
        format!("COPY {} ({}) FROM STDIN (FORMAT binary)", self.data_target, columns.join(", "))
    }

    /// What turns this load's rows into binary COPY rows, for another thread to use.
    pub fn row_encoder(&self) -> RowEncoder {
        RowEncoder { ds: self.ds, load_id: self.load_id, staged: self.mode == Mode::Merge }
    }

    /// Whether the load looks keys up in the table between chunks (a keyed append into a
    /// table that held rows), so its rows cannot stream through one open COPY.
    pub fn looks_up_keys(&self) -> bool {
        self.probe_keys
    }

    /// Rows encoded by `row_encoder` on another thread, streamed into the data table through
    /// one COPY that stays open while `pieces` arrive, each sent as it comes; ends when the
    /// sender hangs up. Each piece's buffer goes back through `spent` to be filled again.
    ///
    /// A COPY per chunk made the server wait while the next chunk was encoded, and this side
    /// wait while the server ingested (the statement ends only once every row is in): the
    /// two took turns. Here the server ingests one piece while the next is encoded.
    pub fn copy_stream(&mut self, pieces: Receiver<Vec<u8>>, spent: Sender<Vec<u8>>) -> Result<()> {
        let Ok(mut piece) = pieces.recv() else { return Ok(()) };
        let sql = self.rows_copy_sql();
        let failed = || format!("COPY into {} failed", self.ds.name);
        let mut w = self.client.copy_in(&sql).map_err(|e| Failure::Database(describe(&e))).with_context(failed)?;
        let mut header = Vec::new();
        copy::header(&mut header);
        w.write_all(&header).map_err(copy_failed).with_context(failed)?;
        loop {
            // Flushed piece by piece: the write returns once the connection took the piece,
            // so the socket is kept busy for as long as pieces come.
            w.write_all(&piece).and_then(|()| w.flush()).map_err(copy_failed).with_context(failed)?;
            piece.clear();
            let _ = spent.send(piece);
            match pieces.recv() {
                Ok(next) => piece = next,
                Err(_) => break,
            }
        }
        let mut trailer = Vec::new();
        copy::trailer(&mut trailer);
        w.write_all(&trailer).map_err(copy_failed).with_context(failed)?;
        w.finish().map_err(|e| Failure::Database(describe(&e))).with_context(failed)?;
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
        let row = self
            .client
            .query_opt(
                &format!(
                    "SELECT id FROM {}.{LEDGER} WHERE table_name = $1 AND file = $2 AND etag IS NOT DISTINCT FROM $3 AND file_size = $4 AND status = 'ok' LIMIT 1",
                    ident(&self.schema)
                ),
                &[&self.ds.name, &url, &etag, &(size as i64)],
            )
            .map_err(|e| Failure::Database(describe(&e)))?;
        match row {
            Some(r) => Err(Failure::AlreadyLoaded(format!(
                "{url}: already loaded into {} (load {}, same ETag and size); use --force to load it again",
                self.ds.name,
                r.get::<_, i64>(0)
            ))
            .into()),
            None => Ok(()),
        }
    }

    /// A file or object whose checksum the ledger holds as loaded is refused (the check for
    /// an object, whose checksum is known only once it has been read).
    pub fn refuse_loaded_checksum(&mut self, checksum: &str) -> Result<()> {
        let row = self
            .client
            .query_opt(
                &format!(
                    "SELECT id, file FROM {}.{LEDGER} WHERE table_name = $1 AND checksum = $2 AND status = 'ok' LIMIT 1",
                    ident(&self.schema)
                ),
                &[&self.ds.name, &checksum],
            )
            .map_err(|e| Failure::Database(describe(&e)))?;
        match row {
            Some(r) => Err(Failure::AlreadyLoaded(format!(
                "{}: already loaded into {} (load {}, from {}, same checksum); use --force to load it again",
                self.source_file,
                self.ds.name,
                r.get::<_, i64>(0),
                r.get::<_, String>(1)
            ))
            .into()),
            None => Ok(()),
        }
    }

    /// For a keyed append: the rows of `accepted` whose key the table already holds, as
    /// (record, the load that holds it). Looked up one key at a time through the key's index
    /// (a hash join would read the whole table for every chunk).
    pub fn keys_already_loaded(&mut self, accepted: &DataFrame) -> Result<Vec<(u64, i64)>> {
        if !self.probe_keys || accepted.height() == 0 {
            return Ok(Vec::new());
        }
        self.buf.clear();
        copy::header(&mut self.buf);
        copy::encode_keys(self.ds, accepted, &mut self.buf)?;
        copy::trailer(&mut self.buf);
        let keys: Vec<String> = self.ds.unique.iter().map(|k| ident(k)).collect();
        copy_in(&mut self.client, &format!("COPY {KEY_PROBE} ({}, __record) FROM STDIN (FORMAT binary)", keys.join(", ")), &self.buf)?;
        let on: Vec<String> = keys.iter().map(|k| format!("t.{k} = k.{k}")).collect();
        let sql = format!(
            "SELECT __record, held FROM (SELECT k.__record, (SELECT t.load_id FROM {} t WHERE {} LIMIT 1) AS held FROM {KEY_PROBE} k) f
             WHERE held IS NOT NULL",
            self.data_target,
            on.join(" AND ")
        );
        let rows = self.client.query(&sql, &[]).map_err(|e| Failure::Database(format!("cannot look up keys: {}", describe(&e))))?;
        exec(&mut self.client, "cannot clear the key probe", &format!("TRUNCATE {KEY_PROBE}"))?;
        Ok(rows.iter().map(|r| (r.get::<_, i64>(0) as u64, r.get(1))).collect())
    }

    /// Takes back staged rows a later row with their key superseded (by record); the caller
    /// keeps them as rejects.
    pub fn retract(&mut self, records: &[u64]) -> Result<()> {
        let records: Vec<i64> = records.iter().map(|r| *r as i64).collect();
        let gone = self
            .client
            .execute(&format!("DELETE FROM {MERGE_STAGE} WHERE __record = ANY($1)"), &[&records])
            .map_err(|e| Failure::Database(format!("cannot take back superseded rows: {}", describe(&e))))?;
        if gone != records.len() as u64 {
            return Err(anyhow::anyhow!("took back {gone} staged rows for {} superseded records", records.len()));
        }
        Ok(())
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

    fn rejects_copy_sql(&self) -> String {
        format!(
            "COPY {} (load_id, source_file, line, record, reason, detail, raw, raw_bytes) FROM STDIN (FORMAT binary)",
            self.rejects_target
        )
    }

    /// Swaps the staging tables in (replace), records the load in the ledger and commits.
    ///
    /// The old tables are renamed aside, not dropped, inside the transaction: a query that
    /// started before the commit and waits on the swap's lock then reads the old table
    /// instead of failing on a dropped one. They are dropped after the commit (and, should
    /// that not happen, at the start of the next load), by the `AfterCommit` returned.
    pub fn commit(mut self, stats: &mut LoadStats) -> Result<AfterCommit> {
        let s = ident(&self.schema);
        let mut aside = Vec::new();
        if self.mode == Mode::Merge {
            stats.merged = Some(self.merge_staged()?);
        }
        stats.schema_changes = std::mem::take(&mut self.schema_changes);
        if self.mode == Mode::Replace {
            for (live, staged) in [(self.ds.name.clone(), &self.data_target), (self.ds.rejects_table(), &self.rejects_target)] {
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
            // The loads whose rows this replace swaps out are no longer in the table: the
            // ledger's `ok` loads of a table are exactly those whose rows it holds.
            self.client
                .execute(&format!("UPDATE {s}.{LEDGER} SET status = 'replaced' WHERE table_name = $1 AND status = 'ok'"), &[&self.ds.name])
                .map_err(|e| Failure::Database(format!("cannot update {LEDGER}: {}", describe(&e))))?;
        }
        insert_ledger(&mut self.client, &self.schema, Some(self.load_id), stats, self.mode, self.started, "ok", None)?;
        exec(&mut self.client, "commit failed", "COMMIT")?;
        let mut tidy = AfterCommit { client: self.client, table: self.ds.name.clone(), analyze: None, drop: None };
        if self.mode == Mode::Replace {
            tidy.analyze = Some(format!("ANALYZE {s}.{}", ident(&self.ds.name)));
            tidy.drop = Some(format!("DROP TABLE IF EXISTS {}", aside.join(", ")));
        }
        Ok(tidy)
    }

    /// Merges the staged rows into the table on the key, in three statements:
    ///
    /// 1. one join of the staged rows with the table's rows of the same key, kept aside:
    ///    for each, the old row's load, day and row hash (validate's figures: equal rows
    ///    stay under their earlier load, changed ones are taken from it), and whether the
    ///    contents are equal;
    /// 2. `UPDATE` of the changed rows, found by key through the index;
    /// 3. `INSERT` of the staged rows with no match, in key order (the unique index then
    ///    fills page by page rather than at random; with it, inserting costs ten times what
    ///    it does without, so this is most of a merge's time).
    ///
    /// Cheaper than `INSERT ... ON CONFLICT DO UPDATE` here (each conflict check is a
    /// speculative insertion), and the join says what the upsert's RETURNING cannot: the old
    /// rows. The table's lock (exclusive among loads) keeps the rows still in between.
    fn merge_staged(&mut self) -> Result<Merged> {
        let ds = self.ds;
        let table = format!("{}.{}", ident(&self.schema), ident(&ds.name));
        let cols: Vec<String> = ds.column_names().map(ident).collect();
        let row = |alias: &str| format!("ROW({})", cols.iter().map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", "));
        let keys: Vec<String> = ds.unique.iter().map(|k| ident(k)).collect();
        let on: Vec<String> = keys.iter().map(|k| format!("t.{k} = m.{k}")).collect();
        let db = |what: &str, e: postgres::Error| Failure::Database(format!("{what}: {}", describe(&e)));
        let clock = std::time::Instant::now();
        exec(
            &mut self.client,
            "cannot compare the staged rows",
            &format!(
                "ANALYZE {MERGE_STAGE};
                 CREATE TEMP TABLE tier_matched ON COMMIT DROP AS
                   SELECT m.__record, t.load_id AS old_load, {day} AS old_day, hash_record_extended({t}, {seed}) AS old_hash,
                          {t} IS NOT DISTINCT FROM {m} AS same
                   FROM {MERGE_STAGE} m JOIN {table} t ON {on};
                 ANALYZE pg_temp.tier_matched;",
                day = crate::pg::catalog::day_sql(ds, "t"),
                t = row("t"),
                m = row("m"),
                seed = crate::figures::ROW_HASH_SEED,
                on = on.join(" AND "),
            ),
        )?;
        tracing::info!("merge: compared in {:.2?}", clock.elapsed());
        let mut merged =
            Merged { unchanged_figures: Figures { columns: Figures::columns_of(ds), ..Figures::default() }, ..Merged::default() };
        let figures = "SELECT old_load, old_day, same, count(*), sum(old_hash)::text FROM pg_temp.tier_matched GROUP BY 1, 2, 3";
        for r in self.client.query(figures, &[]).map_err(|e| db("cannot compare the staged rows", e))? {
            let (load, day, same, rows, digest): (i64, Option<i32>, bool, i64, String) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            let day = day.map_or(crate::figures::NO_DAY, i64::from);
            let figures = Day { rows: rows as u64, digest: digest.parse().map_err(|_| anyhow::anyhow!("digest sum {digest:?}"))? };
            if same {
                merged.unchanged += figures.rows;
                let d = merged.unchanged_figures.days.entry(day).or_default();
                d.rows += figures.rows;
                d.digest += figures.digest;
            } else {
                merged.taken.push((load, day, figures));
            }
        }
        let others: Vec<String> = ds.fields.iter().filter(|f| !ds.unique.contains(&f.name)).map(|f| ident(&f.name)).collect();
        if !others.is_empty() {
            let update = format!(
                "UPDATE {table} t SET {}, load_id = m.load_id
                 FROM {MERGE_STAGE} m JOIN pg_temp.tier_matched x ON x.__record = m.__record AND NOT x.same
                 WHERE {}",
                others.iter().map(|c| format!("{c} = m.{c}")).collect::<Vec<_>>().join(", "),
                on.join(" AND "),
            );
            merged.updated = self.client.execute(&update, &[]).map_err(|e| db(&format!("cannot update {}", ds.name), e))?;
        }
        tracing::info!("merge: updated in {:.2?}", clock.elapsed());
        let insert = format!(
            "INSERT INTO {table} ({cols}, load_id) SELECT {cols}, load_id FROM {MERGE_STAGE} m
             WHERE NOT EXISTS (SELECT FROM pg_temp.tier_matched x WHERE x.__record = m.__record) ORDER BY {keys}",
            cols = cols.join(", "),
            keys = keys.join(", "),
        );
        merged.inserted = self.client.execute(&insert, &[]).map_err(|e| db(&format!("cannot insert into {}", ds.name), e))?;
        tracing::info!("merge: inserted in {:.2?}", clock.elapsed());
        Ok(merged)
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

/// Rejects encoded as binary COPY rows into a temporary file, while the connection is busy
/// with the rows' COPY: memory stays flat however many there are.
pub struct RejectSpool {
    file: std::io::BufWriter<std::fs::File>,
    load_id: i64,
    source_file: String,
    rows: u64,
    /// One batch's encoded rejects, on their way into the file.
    block: Vec<u8>,
}

impl RejectSpool {
    pub fn push(&mut self, rejects: &[Reject]) -> Result<()> {
        if rejects.is_empty() {
            return Ok(());
        }
        self.block.clear();
        copy::encode_rejects(rejects, self.load_id, &self.source_file, &mut self.block);
        self.file.write_all(&self.block).map_err(|e| Failure::Input(format!("the rejects' temporary file failed: {e}")))?;
        self.rows += rejects.len() as u64;
        Ok(())
    }
}

/// Adds the columns a load grew for new keys (`evolve`) that the table lacks, inside the
/// load's transaction (a failed load leaves the table as it was). A replace's new table has
/// them from its DDL; they are changes when the old table lacked them.
fn add_evolved_columns(client: &mut Client, ds: &Dataset, schema: &str, mode: Mode) -> Result<Vec<SchemaChange>> {
    let evolved: Vec<&crate::dataset::Field> = ds.fields.iter().filter(|f| f.evolved).collect();
    if evolved.is_empty() {
        return Ok(Vec::new());
    }
    let existing = table_columns(client, schema, &ds.name)?;
    let mut changes = Vec::new();
    for f in evolved.into_iter().filter(|f| !existing.iter().any(|(name, _)| *name == f.name)) {
        if mode.keeps_rows() {
            exec(
                client,
                &format!("cannot add column {} to {}", f.name, ds.name),
                &format!("ALTER TABLE {}.{} ADD COLUMN {} {}", ident(schema), ident(&ds.name), ident(&f.name), f.kind.sql_type()),
            )?;
        }
        changes.push(SchemaChange { column: f.name.clone(), kind: f.kind.name().to_string(), key: f.key.display() });
    }
    Ok(changes)
}

/// The unique index on the dataset's key that merges and keyed appends look keys up in (and
/// that keeps two loads from both adding one new key), made once and kept.
/// Named after the key's columns, so a contract whose key changed gets a new one.
fn ensure_key_index(client: &mut Client, ds: &Dataset, schema: &str) -> Result<()> {
    let tag = blake3::hash(ds.unique.join(",").as_bytes()).to_hex();
    let stem: String = ds.name.chars().take(40).collect();
    let index = format!("{stem}__key_{}", &tag[..12]);
    let keys: Vec<String> = ds.unique.iter().map(|k| ident(k)).collect();
    let sql = format!("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {}.{} ({})", ident(&index), ident(schema), ident(&ds.name), keys.join(", "));
    client.batch_execute(&sql).map_err(|e| match e.code() {
        Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => Failure::Input(format!(
            "{} holds rows with the same {} already, and merges and keyed appends need that key to be \
             unique; remove the repeats (or load with --mode replace) first",
            ds.name,
            ds.unique.join(", ")
        )),
        _ => Failure::Database(format!("cannot create the key index of {}: {}", ds.name, describe(&e))),
    })?;
    Ok(())
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

/// The ledger's newest entry (id and status), if any: what changes when a load lands.
pub fn newest_load(client: &mut Client, schema: &str) -> Result<Option<(i64, String)>> {
    if !super::connect::table_exists(client, schema, LEDGER)? {
        return Ok(None);
    }
    let table = format!("{}.{LEDGER}", ident(schema));
    let row = client
        .query_opt(&format!("SELECT id, status FROM {table} ORDER BY id DESC LIMIT 1"), &[])
        .map_err(|e| Failure::Database(describe(&e)))?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Writes a ledger row. For failed loads this runs on a fresh connection after the
/// load's transaction is gone, so the failure is on record.
#[allow(clippy::too_many_arguments)]
pub fn insert_ledger(
    client: &mut Client,
    schema: &str,
    id: Option<i64>,
    stats: &LoadStats,
    mode: Mode,
    started: SystemTime,
    status: &str,
    error: Option<&str>,
) -> Result<()> {
    let s = ident(schema);
    let rejected = serde_json::to_string(&stats.rejected)?;
    let warnings = stats.warnings_json().to_string();
    let sql = format!(
        "INSERT INTO {s}.{LEDGER} (id, table_name, file, file_size, checksum, started_at, finished_at, records, loaded, rejected,
            rejected_by_reason, warnings, mode, tool_version, status, error, figures, inserted, updated, unchanged, schema_changes, etag)
         VALUES (COALESCE($1, nextval(pg_get_serial_sequence('{q}.{LEDGER}', 'id'))), $2, $3, $4, $5, to_timestamp($6), clock_timestamp(), $7, $8, $9,
            $10::text::jsonb, $11::text::jsonb, $12, $13, $14, $15, $16::text::jsonb, $17, $18, $19, $20::text::jsonb, $21)",
        q = s.replace('\'', "''")
    );
    client
        .execute(
            &sql,
            &[
                &id,
                &stats.table,
                &stats.file,
                &(stats.file_size as i64),
                &stats.checksum,
                &unix_seconds(started),
                &(stats.records as i64),
                &(stats.loaded as i64),
                &(stats.rejected_total() as i64),
                &rejected,
                &warnings,
                &mode.as_str(),
                &env!("CARGO_PKG_VERSION"),
                &status,
                &error,
                &stats.figures_json(),
                &(stats.inserted() as i64),
                &(stats.merged.as_ref().map_or(0, |m| m.updated) as i64),
                &(stats.merged.as_ref().map_or(0, |m| m.unchanged) as i64),
                &(!stats.schema_changes.is_empty()).then(|| serde_json::to_string(&stats.schema_changes)).transpose()?,
                &stats.etag,
            ],
        )
        .map_err(|e| Failure::Database(format!("cannot record the load in {LEDGER}: {}", describe(&e))))?;
    Ok(())
}

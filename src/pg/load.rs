//! One table's load as one transaction: binary COPY into a staging table (replace) or
//! the table itself (append), rejects beside it, a ledger row, then commit.
//!
//! Readers see the old table until the commit; any failure before it (a bad file, a lost
//! connection, the process killed) rolls everything back, so the previous table and its
//! rejects stay exactly as they were. Transaction-scoped advisory locks order loads of the
//! same table: a replace excludes every other load of it, appends exclude only each other's
//! file. A replace marks the loads it supersedes `replaced` in the ledger.

use std::io::Write;
use std::time::SystemTime;

use anyhow::{Context, Result};
use polars::prelude::DataFrame;
use postgres::Client;

use super::connect::{describe, exec, ident};
use super::copy::{self, Reject};
use crate::dataset::Dataset;
use crate::error::Failure;
use crate::stats::{unix_seconds, LoadStats};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Replace the table (and its rejects) atomically.
    Replace,
    /// Add to the table; a file already in the ledger is refused unless --force.
    Append,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Replace => "replace",
            Mode::Append => "append",
        }
    }
}

pub const LEDGER: &str = "tier_loads";
const STAGING_SUFFIX: &str = "__tier_new";
/// The replaced tables, between the swap and their drop just after the commit.
const OLD_SUFFIX: &str = "__tier_old";

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

/// A table's columns and their types (as `format_type` spells them), in order; empty when
/// there is no such table.
pub fn table_columns(client: &mut Client, schema: &str, table: &str) -> Result<Vec<(String, String)>> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&format!("{}.{}", ident(schema), ident(table))],
        )
        .map_err(|e| Failure::Database(describe(&e)))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Brings an existing table in line with a contract that grew: declared columns it lacks are
/// added (nullable: the rows already there have no value), a declared column of another type
/// is an error that names both. Columns the contract does not declare are left alone
/// (`validate` reports them). Returns the columns added.
fn add_declared_columns(client: &mut Client, ds: &Dataset, schema: &str) -> Result<Vec<String>> {
    let existing = table_columns(client, schema, &ds.name)?;
    let mut added = Vec::new();
    for f in &ds.fields {
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

pub const REJECTS_DDL: &str = "load_id bigint NOT NULL,
  source_file text NOT NULL,
  line bigint NOT NULL,
  reason text NOT NULL,
  detail text,
  raw text NOT NULL,
  raw_bytes bytea";

/// Creates the schema and the ledger if missing (under a lock: concurrent
/// `CREATE ... IF NOT EXISTS` can otherwise collide).
pub fn ensure_ledger(client: &mut Client, schema: &str) -> Result<()> {
    let s = ident(schema);
    exec(
        client,
        "cannot create the load ledger",
        &format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock(hashtext('tier:ddl'));
             CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {s}.{LEDGER} (
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
        if mode == Mode::Append {
            // Created in a transaction of their own, under the DDL lock, so that appends of
            // different files can run side by side.
            exec(
                &mut client,
                "cannot create the tables",
                &format!(
                    "BEGIN; SELECT pg_advisory_xact_lock(hashtext('tier:ddl'));
                     CREATE TABLE IF NOT EXISTS {s}.{} (\n  {ddl}\n);
                     CREATE TABLE IF NOT EXISTS {s}.{} (\n  {REJECTS_DDL}\n);",
                    ident(&table),
                    ident(&rejects)
                ),
            )?;
            // Still under the DDL lock: a contract that grew adds its columns once.
            let added = add_declared_columns(&mut client, ds, schema);
            exec(&mut client, "cannot create the tables", if added.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
            added?;
        }
        exec(&mut client, "cannot start the load transaction", "BEGIN")?;
        // The table's key: a replace takes it exclusively, an append shared, so a replace
        // waits for running appends and appends wait for a running replace (an append that
        // committed into the table a replace then swaps out would be in the ledger as `ok`
        // with its rows gone). Appends also lock their file, so different files load side
        // by side while the same file never loads twice at once.
        let table_key = format!("tier:{schema}.{table}");
        let table_lock = match mode {
            Mode::Replace => "SELECT pg_advisory_xact_lock(hashtext($1))",
            Mode::Append => "SELECT pg_advisory_xact_lock_shared(hashtext($1))",
        };
        client.execute(table_lock, &[&table_key]).map_err(|e| Failure::Database(format!("cannot lock {table}: {}", describe(&e))))?;
        if let (Mode::Append, Some(sum)) = (mode, append_checksum) {
            client
                .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&format!("{table_key}:{sum}")])
                .map_err(|e| Failure::Database(format!("cannot lock {table}: {}", describe(&e))))?;
        }
        if let (Mode::Append, Some(sum), false) = (mode, append_checksum, force) {
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
            Mode::Append => (format!("{s}.{}", ident(&table)), format!("{s}.{}", ident(&rejects))),
        };
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
            buf: Vec::with_capacity(16 << 20),
        })
    }

    /// COPYs one chunk's accepted rows and rejects.
    pub fn write(&mut self, accepted: &DataFrame, rejects: &[Reject]) -> Result<()> {
        if accepted.height() > 0 {
            self.buf.clear();
            copy::header(&mut self.buf);
            copy::encode_rows(self.ds, accepted, self.load_id, &mut self.buf)?;
            copy::trailer(&mut self.buf);
            let columns: Vec<String> = self.ds.column_names().map(ident).chain(["load_id".to_string()]).collect();
            let sql = format!("COPY {} ({}) FROM STDIN (FORMAT binary)", self.data_target, columns.join(", "));
            copy_in(&mut self.client, &sql, &self.buf).with_context(|| format!("COPY into {} failed", self.ds.name))?;
        }
        if !rejects.is_empty() {
            self.buf.clear();
            copy::header(&mut self.buf);
            copy::encode_rejects(rejects, self.load_id, &self.source_file, &mut self.buf);
            copy::trailer(&mut self.buf);
            let sql = format!(
                "COPY {} (load_id, source_file, line, reason, detail, raw, raw_bytes) FROM STDIN (FORMAT binary)",
                self.rejects_target
            );
            copy_in(&mut self.client, &sql, &self.buf).with_context(|| format!("COPY into {} failed", self.ds.rejects_table()))?;
        }
        Ok(())
    }

    /// Swaps the staging tables in (replace), records the load in the ledger and commits.
    ///
    /// The old tables are renamed aside, not dropped, inside the transaction: a query that
    /// started before the commit and waits on the swap's lock then reads the old table
    /// instead of failing on a dropped one. They are dropped right after the commit (and,
    /// should that not happen, at the start of the next load).
    pub fn commit(mut self, stats: &LoadStats) -> Result<i64> {
        let s = ident(&self.schema);
        let mut aside = Vec::new();
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
            exec(&mut self.client, "ANALYZE failed", &format!("ANALYZE {s}.{}", ident(&self.ds.name)))?;
            // The loads whose rows this replace swaps out are no longer in the table: the
            // ledger's `ok` loads of a table are exactly those whose rows it holds.
            self.client
                .execute(&format!("UPDATE {s}.{LEDGER} SET status = 'replaced' WHERE table_name = $1 AND status = 'ok'"), &[&self.ds.name])
                .map_err(|e| Failure::Database(format!("cannot update {LEDGER}: {}", describe(&e))))?;
        }
        insert_ledger(&mut self.client, &self.schema, Some(self.load_id), stats, self.mode, self.started, "ok", None)?;
        exec(&mut self.client, "commit failed", "COMMIT")?;
        if !aside.is_empty() {
            if let Err(e) = exec(&mut self.client, "dropping the previous tables", &format!("DROP TABLE IF EXISTS {}", aside.join(", "))) {
                tracing::warn!("the load is committed, but the previous tables were not dropped ({e:#}); the next load drops them");
            }
        }
        Ok(self.load_id)
    }
}

fn copy_in(client: &mut Client, sql: &str, bytes: &[u8]) -> Result<()> {
    let mut w = client.copy_in(sql).map_err(|e| Failure::Database(describe(&e)))?;
    w.write_all(bytes).map_err(|e| Failure::Database(format!("connection lost during COPY: {e}")))?;
    w.finish().map_err(|e| Failure::Database(describe(&e)))?;
    Ok(())
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
            rejected_by_reason, warnings, mode, tool_version, status, error, figures)
         VALUES (COALESCE($1, nextval(pg_get_serial_sequence('{q}.{LEDGER}', 'id'))), $2, $3, $4, $5, to_timestamp($6), clock_timestamp(), $7, $8, $9,
            $10::text::jsonb, $11::text::jsonb, $12, $13, $14, $15, $16::text::jsonb)",
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
            ],
        )
        .map_err(|e| Failure::Database(format!("cannot record the load in {LEDGER}: {}", describe(&e))))?;
    Ok(())
}

//! The ledger, `tier_loads`: one row per load of any dataset of a schema, what `validate`,
//! re-runs and the report read.

use std::time::SystemTime;

use anyhow::Result;
use postgres::Client;

use super::connect::{describe, exec, ident};
use crate::dataset::{Mode, LEDGER};
use crate::error::Failure;
use crate::stats::{unix_seconds, LoadStats};

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

/// Refuses a file or object whose checksum the ledger holds as loaded into `table`.
pub fn refuse_loaded(client: &mut Client, schema: &str, table: &str, source_file: &str, checksum: &str) -> Result<()> {
    let row = client
        .query_opt(
            &format!("SELECT id, file FROM {}.{LEDGER} WHERE table_name = $1 AND checksum = $2 AND status = 'ok' LIMIT 1", ident(schema)),
            &[&table, &checksum],
        )
        .map_err(|e| Failure::Database(describe(&e)))?;
    match row {
        Some(r) => Err(Failure::AlreadyLoaded(format!(
            "{source_file}: already loaded into {table} (load {}, from {}, same checksum); use --force to load it again",
            r.get::<_, i64>(0),
            r.get::<_, String>(1)
        ))
        .into()),
        None => Ok(()),
    }
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

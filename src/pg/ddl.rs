//! The tables a load creates and grows: the data table and its rejects, columns a contract
//! or a load's new keys add, the key's unique index.

use anyhow::Result;
use postgres::Client;

use super::catalog::table_columns;
use super::connect::{describe, exec, ident};
use crate::dataset::{Dataset, Mode};
use crate::error::Failure;
use crate::stats::SchemaChange;

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
pub fn add_declared_columns(client: &mut Client, ds: &Dataset, schema: &str) -> Result<Vec<String>> {
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

/// Creates the table and its rejects if missing, in a transaction of their own under the DDL
/// lock, so that appends of different files can run side by side; a contract that grew adds
/// its columns there, once, and a key gets its unique index.
pub fn create_tables(client: &mut Client, ds: &Dataset, schema: &str) -> Result<()> {
    let s = ident(schema);
    let ddl = table_ddl(ds);
    exec(
        client,
        "cannot create the tables",
        &format!(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtext('tier:ddl'));
             CREATE TABLE IF NOT EXISTS {s}.{} (\n  {ddl}\n);
             CREATE TABLE IF NOT EXISTS {s}.{} (\n  {REJECTS_DDL}\n);",
            ident(&ds.name),
            ident(&ds.rejects_table())
        ),
    )?;
    // Each change only when it is missing: an ALTER or CREATE INDEX waits for the load in
    // progress on the table (holding this lock meanwhile), and that load may be waiting
    // for a table this transaction altered.
    let mut added = match table_columns(client, schema, &ds.rejects_table()).map(|c| c.iter().any(|(name, _)| name == "record")) {
        Ok(true) => Ok(()),
        Ok(false) => exec(
            client,
            "cannot create the tables",
            &format!("ALTER TABLE {s}.{} ADD COLUMN IF NOT EXISTS record bigint", ident(&ds.rejects_table())),
        ),
        Err(e) => Err(e),
    };
    if added.is_ok() {
        added = add_declared_columns(client, ds, schema).map(drop);
    }
    // Merges and keyed appends look keys up in the key's unique index (and two loads of one
    // new key at once cannot both commit it).
    if added.is_ok() && !ds.unique.is_empty() {
        added = match relation_exists(client, schema, &key_index(ds)) {
            Ok(true) => Ok(()),
            Ok(false) => ensure_key_index(client, ds, schema),
            Err(e) => Err(e),
        };
    }
    exec(client, "cannot create the tables", if added.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
    added
}

/// Adds the columns a load grew for new keys (`evolve`) that the table lacks, inside the
/// load's transaction (a failed load leaves the table as it was). A replace's new table has
/// them from its DDL; they are changes when the old table lacked them.
pub fn add_evolved_columns(client: &mut Client, ds: &Dataset, schema: &str, mode: Mode) -> Result<Vec<SchemaChange>> {
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
        let table = ds.log.as_ref().map(|_| ds.name.clone());
        changes.push(SchemaChange { table, column: f.name.clone(), kind: f.kind.name().to_string(), key: f.key.display() });
    }
    Ok(changes)
}

/// Whether the schema has a table or index of this name (a load's uncommitted drop of it
/// still shows it to others).
fn relation_exists(client: &mut Client, schema: &str, name: &str) -> Result<bool> {
    let row = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{}.{}", ident(schema), ident(name))])
        .map_err(|e| Failure::Database(describe(&e)))?;
    Ok(row.get(0))
}

/// The name of the key's unique index (`ensure_key_index`).
pub fn key_index(ds: &Dataset) -> String {
    let tag = blake3::hash(ds.unique.join(",").as_bytes()).to_hex();
    let stem: String = ds.name.chars().take(40).collect();
    format!("{stem}__key_{}", &tag[..12])
}

/// Drops the key's unique index inside a load's transaction, for a keyed append into an
/// empty table: the server builds the index over the loaded rows at the end in a fraction of
/// what inserting each row into it costs (`ensure_key_index` rebuilds it before the commit;
/// the duplicate check keeps a file's keys unique, so the rebuild finds none twice).
pub fn drop_key_index(client: &mut Client, ds: &Dataset, schema: &str) -> Result<()> {
    exec(
        client,
        &format!("cannot set {}'s key index aside", ds.name),
        &format!("DROP INDEX IF EXISTS {}.{}", ident(schema), ident(&key_index(ds))),
    )
}

/// The unique index on the dataset's key that merges and keyed appends look keys up in (and
/// that keeps two loads from both adding one new key), made once and kept.
/// Named after the key's columns, so a contract whose key changed gets a new one.
pub fn ensure_key_index(client: &mut Client, ds: &Dataset, schema: &str) -> Result<()> {
    let index = key_index(ds);
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

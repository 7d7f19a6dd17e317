//! The lake's Iceberg catalog: the two tables of Iceberg's JDBC / SQL catalog
//! (`iceberg_tables`, `iceberg_namespace_properties`, as pyiceberg's `SqlCatalog` and
//! Iceberg's `JdbcCatalog` lay them out, in their v1 schema with `iceberg_type`), in the database tier loads into, read and moved
//! inside the load's own transaction: the table and the lake commit together or not at all.

use anyhow::{Context, Result};
use polars::prelude::DataFrame;
use postgres::Client;

use crate::dataset::Dataset;
use crate::error::Failure;
use crate::pg::connect::{describe, ident};

/// The catalog's name in its tables (`catalog_name`) unless told otherwise.
pub const DEFAULT_CATALOG: &str = "tier";

/// One Iceberg table's row in the catalog, seen through an open transaction.
pub struct CatalogRow<'a> {
    client: &'a mut Client,
    /// The PostgreSQL schema holding the catalog's tables.
    schema: String,
    catalog: String,
    namespace: String,
    table: String,
}

fn failed(what: &str, e: &postgres::Error) -> anyhow::Error {
    Failure::Database(format!("lake catalog: {what}: {}", describe(e))).into()
}

impl<'a> CatalogRow<'a> {
    /// The row of `namespace.table` in catalog `catalog`, whose tables are in `schema`
    /// (created if missing, as pyiceberg creates them).
    pub fn open(client: &'a mut Client, schema: &str, catalog: &str, namespace: &str, table: &str) -> Result<CatalogRow<'a>> {
        let s = ident(schema);
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {s}.iceberg_tables (
               catalog_name varchar(255) NOT NULL,
               table_namespace varchar(255) NOT NULL,
               table_name varchar(255) NOT NULL,
               metadata_location varchar(1000),
               previous_metadata_location varchar(1000),
               iceberg_type varchar(5),
               PRIMARY KEY (catalog_name, table_namespace, table_name));
             CREATE TABLE IF NOT EXISTS {s}.iceberg_namespace_properties (
               catalog_name varchar(255) NOT NULL,
               namespace varchar(255) NOT NULL,
               property_key varchar(255) NOT NULL,
               property_value varchar(1000),
               PRIMARY KEY (catalog_name, namespace, property_key));"
        );
        // Two first loads at once would both create them: one waits for the other.
        client
            .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&format!("tier:lake-catalog:{schema}")])
            .map_err(|e| failed("cannot lock the catalog", &e))?;
        client.batch_execute(&ddl).map_err(|e| failed("cannot create its tables", &e))?;
        // A namespace exists for the catalogs when it has a property (pyiceberg's "exists").
        client
            .execute(
                &format!(
                    "INSERT INTO {s}.iceberg_namespace_properties VALUES ($1, $2, 'exists', 'true')
                     ON CONFLICT DO NOTHING"
                ),
                &[&catalog, &namespace],
            )
            .map_err(|e| failed("cannot record the namespace", &e))?;
        Ok(CatalogRow {
            client,
            schema: schema.to_string(),
            catalog: catalog.to_string(),
            namespace: namespace.to_string(),
            table: table.to_string(),
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Where the table's current metadata is, if the table exists. `lock`: the row stays
    /// locked until the transaction ends, so no other commit moves it meanwhile (tier's
    /// own loads wait; other writers' compare-and-swap fails and they retry).
    pub fn current(&mut self, lock: bool) -> Result<Option<String>> {
        if lock {
            // A table without a row yet has nothing to lock: two first loads take turns here.
            let key = format!("tier:lake:{}:{}.{}", self.catalog, self.namespace, self.table);
            self.client
                .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key])
                .map_err(|e| failed("cannot lock the table's row", &e))?;
        }
        let sql = format!(
            "SELECT metadata_location FROM {}.iceberg_tables
             WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3{}",
            ident(&self.schema),
            if lock { " FOR UPDATE" } else { "" }
        );
        let row = self
            .client
            .query_opt(&sql, &[&self.catalog, &self.namespace, &self.table])
            .map_err(|e| failed("cannot read the table's row", &e))?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
    }

    /// Moves the table to `new` metadata: a compare-and-swap from `old` (exactly one row
    /// changes), or the table's first row.
    pub fn swap(&mut self, old: Option<&str>, new: &str) -> Result<()> {
        let s = ident(&self.schema);
        let changed = match old {
            Some(old) => self.client.execute(
                &format!(
                    "UPDATE {s}.iceberg_tables SET metadata_location = $4, previous_metadata_location = $5
                     WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3 AND metadata_location = $5"
                ),
                &[&self.catalog, &self.namespace, &self.table, &new, &old],
            ),
            None => self.client.execute(
                &format!("INSERT INTO {s}.iceberg_tables VALUES ($1, $2, $3, $4, NULL, 'TABLE') ON CONFLICT DO NOTHING"),
                &[&self.catalog, &self.namespace, &self.table, &new],
            ),
        }
        .map_err(|e| failed("cannot move the table's row", &e))?;
        if changed != 1 {
            return Err(Failure::Database(format!(
                "lake catalog: {}.{} was changed by another writer during this load; nothing was loaded, load again",
                self.namespace, self.table
            ))
            .into());
        }
        Ok(())
    }
}

impl CatalogRow<'_> {
    /// The days (`catalog::day_sql`; None: no day) of the database table's rows that load
    /// `load_id` wrote: what a merge inserted or updated, seen before its commit.
    pub fn days_of_load(&mut self, ds: &Dataset, load_id: i64) -> Result<Vec<Option<i32>>> {
        let sql = format!(
            "SELECT DISTINCT {} FROM {}.{} t WHERE t.load_id = $1",
            super::catalog::day_sql(ds, "t"),
            ident(&self.schema),
            ident(&ds.name)
        );
        let rows = self.client.query(&sql, &[&load_id]).map_err(|e| failed("cannot find the merged rows' days", &e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The database table's rows per UTC day of `day_column` (None: all in one group, as
    /// are rows without a day).
    pub fn rows_per_day(&mut self, day_column: Option<&str>) -> Result<std::collections::BTreeMap<Option<i32>, u64>> {
        let table = format!("{}.{}", ident(&self.schema), ident(&self.table));
        let day = match day_column {
            None => "NULL::int".to_string(),
            Some(c) => {
                let is_date: bool = self
                    .client
                    .query_one(
                        "SELECT coalesce(bool_or(data_type = 'date'), false) FROM information_schema.columns
                         WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
                        &[&self.schema, &self.table, &c],
                    )
                    .map_err(|e| failed("cannot read the table's columns", &e))?
                    .get(0);
                match is_date {
                    true => format!("{} - date '1970-01-01'", ident(c)),
                    false => format!("(timezone('UTC', {}))::date - date '1970-01-01'", ident(c)),
                }
            }
        };
        let sql = format!("SELECT {day}, count(*) FROM {table} GROUP BY 1");
        let rows = self.client.query(&sql, &[]).map_err(|e| failed(&format!("cannot count the rows of {}", self.table), &e))?;
        Ok(rows.iter().map(|r| (r.get::<_, Option<i32>>(0), r.get::<_, i64>(1) as u64)).collect())
    }

    /// The database table's rows as frames of the contract's columns, streamed through the
    /// load's transaction (a merge's rows included): those `which` says.
    pub fn table_rows(&mut self, ds: &Dataset, which: TableRows, each: impl FnMut(DataFrame) -> Result<()>) -> Result<()> {
        let columns: Vec<String> = ds.fields.iter().map(|f| format!("t.{}", ident(&f.name))).collect();
        let mut sql = format!("SELECT {} FROM {}.{} t", columns.join(", "), ident(&self.schema), ident(&ds.name));
        match which {
            TableRows::All => {}
            TableRows::Days(days) => {
                let day = super::catalog::day_sql(ds, "t");
                let listed: Vec<String> = days.iter().flatten().map(|d| d.to_string()).collect();
                let mut or = vec![format!("({day}) IN ({})", if listed.is_empty() { "NULL".to_string() } else { listed.join(", ") })];
                if days.contains(&None) {
                    or.push(format!("({day}) IS NULL"));
                }
                sql.push_str(&format!(" WHERE {}", or.join(" OR ")));
            }
            TableRows::NotOfLoad(load_id) => sql.push_str(&format!(" WHERE t.load_id <> {load_id}")),
        }
        super::frames::copy_frames_in(self.client, &sql, each).with_context(|| format!("lake: cannot read {}'s rows", ds.name))
    }
}

/// Which of a table's rows `CatalogRow::table_rows` reads.
pub enum TableRows<'d> {
    All,
    /// Those of these days (`catalog::day_sql`; None: without a day).
    Days(&'d [Option<i32>]),
    /// Those other loads wrote.
    NotOfLoad(i64),
}

/// Runs `work` on a table's catalog row in a transaction of its own (`tier lake`'s
/// commands), committed if it succeeds.
pub fn in_transaction<T>(
    client: &mut Client,
    schema: &str,
    catalog: &str,
    table: &str,
    work: impl FnOnce(&mut CatalogRow) -> Result<T>,
) -> Result<T> {
    client.batch_execute("BEGIN").map_err(|e| failed("cannot begin", &e))?;
    let out = CatalogRow::open(client, schema, catalog, schema, table).and_then(|mut row| work(&mut row));
    let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
    client.batch_execute(end).map_err(|e| failed("cannot end its transaction", &e))?;
    out
}

/// The tables of a namespace (the schema) in the catalog, by name.
pub fn tables(client: &mut Client, schema: &str, catalog: &str) -> Result<Vec<String>> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{}.iceberg_tables", ident(schema))])
        .map_err(|e| failed("cannot look for its tables", &e))?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let sql =
        format!("SELECT table_name FROM {}.iceberg_tables WHERE catalog_name = $1 AND table_namespace = $2 ORDER BY 1", ident(schema));
    let rows = client.query(&sql, &[&catalog, &schema]).map_err(|e| failed("cannot list its tables", &e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

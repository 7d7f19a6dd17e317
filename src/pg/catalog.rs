//! What tier asks the server's catalog about a dataset's tables, and the SQL expressions
//! every server-side query of a dataset shares.

use anyhow::Result;
use postgres::Client;

use super::connect::{describe, ident};
use crate::dataset::Dataset;
use crate::error::Failure;

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

/// A row's day in SQL, as `days_of` computes it here: days since 1970-01-01 (UTC, whatever
/// the session's time zone), NULL without a day column. `alias` names the row.
pub fn day_sql(ds: &Dataset, alias: &str) -> String {
    match &ds.day_field {
        Some(d) if ds.field(d).is_some_and(|f| f.kind == crate::dataset::Kind::Date) => format!("{alias}.{} - date '1970-01-01'", ident(d)),
        Some(d) => format!("({alias}.{} AT TIME ZONE 'UTC')::date - date '1970-01-01'", ident(d)),
        None => "NULL::int".to_string(),
    }
}

//! Values and statements checked by PostgreSQL itself before a saved query runs.

use anyhow::Result;
use postgres::Client;

use super::connect::describe;
use crate::error::Failure;

/// A value as an SQL literal, quoted by the server (`quote_literal` over a bound
/// parameter), so no value can end the literal early, whatever it contains.
pub fn literal(client: &mut Client, value: &str) -> Result<String> {
    let row = client
        .query_one("SELECT quote_literal($1::text)", &[&value])
        .map_err(|e| Failure::Input(format!("parameter value {value:?} cannot be used: {}", describe(&e))))?;
    Ok(row.get(0))
}

/// Whether the server reads backslashes in '...' strings literally
/// (`standard_conforming_strings`), which decides where such a string ends.
pub fn standard_strings(client: &mut Client) -> Result<bool> {
    let row = client.query_one("SHOW standard_conforming_strings", &[]).map_err(|e| Failure::Database(describe(&e)))?;
    Ok(row.get::<_, String>(0) == "on")
}

/// Where a statement fails to prepare: message and byte position (1-based) if known.
pub struct SqlError {
    pub message: String,
    pub position: Option<usize>,
}

/// Parses and plans a statement without running it.
pub fn check(client: &mut Client, sql: &str) -> std::result::Result<(), SqlError> {
    match client.prepare(sql) {
        Ok(_) => Ok(()),
        Err(e) => {
            let position = e.as_db_error().and_then(|d| match d.position() {
                Some(postgres::error::ErrorPosition::Original(p)) => Some(*p as usize),
                _ => None,
            });
            Err(SqlError { message: describe(&e), position })
        }
    }
}

/// The smallest and largest value of an integer column of a query's result (for splitting
/// the query into ranges); `None` when the result is empty. The query runs: read-only, in a
/// transaction that is rolled back (see `frames::copy_frames`).
pub fn bounds(client: &mut Client, sql: &str, column: &str, read_only: bool) -> Result<Option<(i64, i64)>> {
    let c = super::connect::ident(column);
    let q = format!("SELECT min({c})::bigint, max({c})::bigint FROM ({sql}) AS tier_bounds");
    let failed = |e: postgres::Error| Failure::Database(format!("--partition-on {column}: {}", describe(&e)));
    if read_only {
        client.batch_execute("BEGIN READ ONLY").map_err(failed)?;
    }
    let row = client.query_one(&q, &[]).map_err(failed)?;
    if read_only {
        client.batch_execute("ROLLBACK").map_err(failed)?;
    }
    Ok(match (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    })
}

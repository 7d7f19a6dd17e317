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

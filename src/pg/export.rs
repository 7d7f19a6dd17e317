//! A query's result as CSV formatted by the server itself: `COPY (query) TO STDOUT (FORMAT
//! csv, HEADER)`, streamed through untouched, as `psql \copy` does. No row is decoded on this
//! side, so it runs at the speed the server formats CSV.

use std::io::{Read, Write};

use anyhow::Result;

use super::connect::{self, describe, exec, ident, Target};
use crate::error::Failure;

/// Streams `sql`'s result as CSV with a header into `out`; returns the bytes written.
/// Timestamps come out in UTC (the session's TimeZone), every statement read-only unless
/// `read_only` is false.
pub fn copy_csv(target: &Target, sql: &str, read_only: bool, schema: &str, out: &mut dyn Write) -> Result<u64> {
    let mut client = connect::connect(target, 3)?;
    let mut settings = format!("SET search_path TO {}, public; SET TimeZone = 'UTC'; SET DateStyle = 'ISO';", ident(schema));
    if read_only {
        // Rolled back at the end, never committed (see `frames::copy_frames`).
        settings.push_str(" SET default_transaction_read_only = on; BEGIN READ ONLY;");
    }
    exec(&mut client, "cannot prepare the session", &settings)?;
    let written = stream_csv(&mut client, sql, out)?;
    if read_only {
        exec(&mut client, "cannot end the read-only transaction", "ROLLBACK")?;
    }
    Ok(written)
}

/// The COPY itself: the server's CSV into `out`.
fn stream_csv(client: &mut postgres::Client, sql: &str, out: &mut dyn Write) -> Result<u64> {
    let copy = format!("COPY ({}) TO STDOUT (FORMAT csv, HEADER)", sql.trim().trim_end_matches(';'));
    let mut reader = client.copy_out(&copy).map_err(|e| Failure::Database(describe(&e)))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut written = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                // The server's own message is inside the I/O error COPY reports.
                let message = e.get_ref().and_then(|inner| inner.downcast_ref::<postgres::Error>()).map(describe).unwrap_or(e.to_string());
                return Err(Failure::Database(format!("the query failed while its rows were read: {message}")).into());
            }
        };
        out.write_all(&buf[..n])?;
        written += n as u64;
    }
    Ok(written)
}

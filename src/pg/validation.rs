//! `validate`'s database side: the table's rows reduced to per-day figures by an aggregate
//! next to the data, beside what the ledger recorded (`ledger.rs` reads that; `validate`
//! holds the figures and the comparison; this module only reads them from PostgreSQL).

use std::collections::BTreeMap;

use anyhow::Result;
use postgres::Client;

use super::catalog::day_sql;
use super::connect::{describe, ident, table_exists as exists};
use super::ledger::{elsewhere, ledger_entry, LoadRecord};
use crate::dataset::Dataset;
use crate::error::Failure;
use crate::figures::{Figures, NO_DAY, ROW_HASH_SEED};

/// What PostgreSQL holds for one table.
pub struct DatabaseSide {
    pub load: Option<LoadRecord>,
    pub table_exists: bool,
    pub rejects_exist: bool,
    pub loaded: Figures,
    pub rejected: BTreeMap<String, u64>,
    /// The table's columns and types, as the catalog has them.
    pub columns: Vec<(String, String)>,
    /// Rows of the file that the table holds under other loads: those a merge found equal
    /// (left under the earlier load), and those later merges replaced.
    pub elsewhere: Figures,
    /// Rows of the file a keyed append turned away (their key was loaded before).
    pub turned_away: Figures,
}

/// Reads one table's side while the file is still being read, before its checksum (which
/// names the file's ledger entry) is known: the figures of the table's latest load. `settle`
/// then fixes the guess up once the checksum is known.
///
/// `helpers`: more connections to the same database. The aggregate is then split by block
/// ranges of the table across them, all reading one snapshot, which this connection
/// exports and keeps for the rest of the validation (a load committing meanwhile is not
/// half seen). A standby cannot export a snapshot: there they are let go, and one
/// connection reads it all.
pub fn read_database(ds: &'static Dataset, client: &mut Client, helpers: &mut Vec<Client>, schema: &str) -> Result<DatabaseSide> {
    // The aggregate runs while this process reads the file, on the same cores: serial, it
    // costs a third of the CPU a parallel plan does for the same time; hashing instead of
    // sorting keeps a large table's rows from spilling to disk (there are few days). (The
    // planner, guessing a group per row, will not aggregate in parallel workers anyway.)
    const SETTINGS: &str = "SET max_parallel_workers_per_gather = 0; SET enable_sort = off";
    client.batch_execute(SETTINGS).map_err(db)?;
    if !helpers.is_empty() && client.query_one("SELECT pg_is_in_recovery()", &[]).map_err(db)?.get::<_, bool>(0) {
        helpers.clear();
    }
    if !helpers.is_empty() {
        client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").map_err(db)?;
        let snapshot: String = client.query_one("SELECT pg_export_snapshot()", &[]).map_err(db)?.get(0);
        for helper in helpers.iter_mut() {
            helper
                .batch_execute(&format!(
                    "{SETTINGS}; BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '{snapshot}'"
                ))
                .map_err(db)?;
        }
    }
    let load = ledger_entry(ds, client, schema, None)?;
    let table_exists = exists(client, schema, &ds.name)?;
    let columns = crate::pg::catalog::table_columns(client, schema, &ds.name)?;
    let mut side = DatabaseSide {
        load,
        table_exists,
        rejects_exist: false,
        loaded: Figures::default(),
        rejected: BTreeMap::new(),
        columns,
        elsewhere: Figures::default(),
        turned_away: Figures::default(),
    };
    if side.table_exists {
        read_rows(ds, client, helpers, schema, &mut side)?;
    }
    Ok(side)
}

/// Settles a side read by `read_database` on the ledger entry of the file with `checksum`
/// (else the latest load). Only when that entry scopes other rows than the guess (an older
/// file of an append-mode table) are the figures read again.
pub fn settle(
    ds: &'static Dataset,
    client: &mut Client,
    helpers: &mut [Client],
    schema: &str,
    mut side: DatabaseSide,
    checksum: &str,
) -> Result<DatabaseSide> {
    let load = ledger_entry(ds, client, schema, Some(checksum))?;
    let reread = side.table_exists && scope(&load) != scope(&side.load);
    side.load = load;
    if reread {
        read_rows(ds, client, helpers, schema, &mut side)?;
    }
    Ok(side)
}

fn db(e: postgres::Error) -> anyhow::Error {
    Failure::Database(describe(&e)).into()
}

/// `parts` conditions on `ctid` that cut `table` into runs of blocks of about equal size,
/// together every row once: the first has no lower bound and the last no upper one, so a
/// row in a block added since the size was read is still counted. (A TID range scan reads
/// only its blocks, from PostgreSQL 14 on; before, each part scans the table and filters.)
fn block_ranges(client: &mut Client, table: &str, parts: usize) -> Result<Vec<String>> {
    if parts == 1 {
        return Ok(vec![String::new()]);
    }
    let blocks: i64 = client
        .query_one("SELECT pg_relation_size($1::text::regclass) / current_setting('block_size')::bigint", &[&table])
        .map_err(db)?
        .get(0);
    let bound = |i: usize| blocks * i as i64 / parts as i64;
    Ok((0..parts)
        .map(|i| match (i, i + 1 == parts) {
            (0, _) => format!("ctid < '({},0)'::tid", bound(1)),
            (_, true) => format!("ctid >= '({},0)'::tid", bound(i)),
            _ => format!("ctid >= '({},0)'::tid AND ctid < '({},0)'::tid", bound(i), bound(i + 1)),
        })
        .collect())
}

/// A table holds many files' rows (appends, merges): the rows of this file's load only.
fn scope(load: &Option<LoadRecord>) -> String {
    match load {
        Some(l) => format!(" WHERE load_id = {}", l.id),
        None => String::new(),
    }
}

/// The loaded rows' figures (one aggregate query, or one per connection over its share of
/// the table's blocks) and the rejects, in `side.load`'s scope.
fn read_rows(ds: &'static Dataset, client: &mut Client, helpers: &mut [Client], schema: &str, side: &mut DatabaseSide) -> Result<()> {
    let (s, t, scope) = (ident(schema), ident(&ds.name), scope(&side.load));
    let columns: Vec<String> = ds.column_names().map(ident).collect();
    // Per day: rows, and the sum of the row hashes as an exact numeric (text here, as the
    // postgres crate has no numeric type); the day (UTC, whatever the session's time zone) as
    // days since 1970-01-01, NULL without a day column.
    let day = day_sql(ds, "r");
    let sql = |range: &str| {
        let filter = match (scope.is_empty(), range.is_empty()) {
            (_, true) => scope.clone(),
            (true, false) => format!(" WHERE {range}"),
            (false, false) => format!("{scope} AND {range}"),
        };
        format!(
            "SELECT {day}, count(*), sum(hash_record_extended(r, {ROW_HASH_SEED}))::text
             FROM (SELECT {cols} FROM {s}.{t}{filter}) r GROUP BY 1",
            cols = columns.join(", "),
        )
    };
    side.loaded = Figures::default();
    (side.elsewhere, side.turned_away) = match &side.load {
        Some(l) => elsewhere(ds, client, schema, l.id)?,
        None => Default::default(),
    };
    let ranges = block_ranges(client, &format!("{s}.{t}"), 1 + helpers.len())?;
    let (mine, theirs) = ranges.split_first().expect("one range at least");
    let parts: Vec<Result<Vec<postgres::Row>, postgres::Error>> = std::thread::scope(|threads| {
        let running: Vec<_> = helpers.iter_mut().zip(theirs).map(|(h, range)| threads.spawn(|| h.query(&sql(range), &[]))).collect();
        let own = client.query(&sql(mine), &[]);
        std::iter::once(own).chain(running.into_iter().map(|r| r.join().expect("a figures query panicked"))).collect()
    });
    for part in parts {
        for row in part.map_err(db)? {
            let day: Option<i32> = row.get(0);
            let rows: i64 = row.get(1);
            let digest: String = row.get(2);
            let digest =
                digest.parse::<i128>().map_err(|e| anyhow::anyhow!("the server's digest sum {digest:?} is not an integer: {e}"))?;
            let d = side.loaded.days.entry(day.map_or(NO_DAY, i64::from)).or_default();
            d.rows += rows as u64;
            d.digest += digest;
        }
    }
    side.rejects_exist = exists(client, schema, &ds.rejects_table())?;
    side.rejected.clear();
    if side.rejects_exist {
        let sql = format!("SELECT reason, count(*) FROM {s}.{}{scope} GROUP BY reason", ident(&ds.rejects_table()));
        for row in client.query(&sql, &[]).map_err(db)? {
            side.rejected.insert(row.get(0), row.get::<_, i64>(1) as u64);
        }
    }
    Ok(())
}

//! What the source files say against what PostgreSQL holds.
//!
//! The source side is read with the load's own reader and rules (`pipeline::check_file`),
//! never a second implementation. Both sides reduce rows to the same figures: per day,
//! the rows and the sum of PostgreSQL's 64-bit row hash (`hash_record_extended`), an
//! order-independent digest of the contents, so an edited value is caught, not only a
//! missing row, and the day it sits on is named. The database computes its side in an
//! aggregate query next to the data (split over two connections reading one snapshot,
//! unless this process is busy rereading the file) instead of sending every row back;
//! this side computes the same hashes with `pg::hash`. The two sides are worked out at
//! the same time (see `cmd::validate`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use polars::prelude::*;
use postgres::Client;

use crate::dataset::Dataset;
use crate::error::Failure;
use crate::pg::connect::{describe, ident};
use crate::pg::hash;
use crate::pg::load::LEDGER;
use crate::pipeline::{check_file, Progress};
use crate::rows::{self, Cell};
use crate::transform::json;
use crate::transform::timestamp::day_of_micros;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// One day's rows, reduced.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Day {
    pub rows: u64,
    /// The sum of the rows' hashes (as PostgreSQL's signed bigints, summed exactly).
    pub digest: i128,
}

/// Rows reduced to what validation compares, by day (days since 1970-01-01).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Figures {
    pub days: BTreeMap<i64, Day>,
    /// The columns (and types) the row hashes covered, set by `add`.
    pub columns: String,
}

impl Figures {
    /// The columns a dataset's row hashes cover, as the ledger records them: figures recorded
    /// under another contract (a column added, a type changed) are not comparable.
    pub fn columns_of(ds: &Dataset) -> String {
        ds.fields.iter().map(|f| format!("{} {}", f.name, f.kind.name())).collect::<Vec<_>>().join(", ")
    }

    pub fn rows(&self) -> u64 {
        self.days.values().map(|d| d.rows).sum()
    }

    pub fn digest(&self) -> i128 {
        self.days.values().map(|d| d.digest).sum()
    }

    /// Adds a frame of rows with the dataset's declared columns. The row hashes come from
    /// the `COL_ROW_HASH` column the duplicate check leaves, else they are computed.
    pub fn add(&mut self, ds: &Dataset, df: &DataFrame) -> PolarsResult<()> {
        self.columns = Figures::columns_of(ds);
        if df.height() == 0 {
            return Ok(());
        }
        let hashes: Vec<u64> = match df.column(COL_ROW_HASH) {
            Ok(c) => c.u64()?.into_iter().map(|h| h.unwrap_or_default()).collect(),
            Err(_) => row_hashes(ds, df)?,
        };
        for (day, h) in days_of(ds, df)?.into_iter().zip(hashes) {
            let day = self.days.entry(day).or_default();
            day.rows += 1;
            day.digest += h as i64 as i128;
        }
        Ok(())
    }
}

impl Figures {
    /// Takes back rows added before (a merge's superseded rows).
    pub fn remove(&mut self, rows: &[crate::dedupe::Retraction]) {
        for r in rows {
            let day = self.days.entry(r.day).or_default();
            day.rows -= 1;
            day.digest -= r.row_hash as i64 as i128;
            if day.rows == 0 {
                self.days.remove(&r.day);
            }
        }
    }

    /// Takes away another set of figures (rows a merge left or took over).
    pub fn subtract(&mut self, other: &Figures) {
        for (d, o) in &other.days {
            let day = self.days.entry(*d).or_default();
            day.rows = day.rows.saturating_sub(o.rows);
            day.digest -= o.digest;
            if day.rows == 0 && day.digest == 0 {
                self.days.remove(d);
            }
        }
    }
}

/// Each row's day (days since 1970-01-01) by the dataset's `day` column; without one, or
/// for a NULL day, `NO_DAY`: the rows form one group.
pub fn days_of(ds: &Dataset, df: &DataFrame) -> PolarsResult<Vec<i64>> {
    let Some(day) = &ds.day_field else { return Ok(vec![NO_DAY; df.height()]) };
    let column = df.column(day)?;
    Ok(match column.dtype() {
        DataType::Date => column.date()?.physical().into_iter().map(|d| d.map_or(NO_DAY, i64::from)).collect(),
        _ => column.datetime()?.physical().into_iter().map(|us| us.map_or(NO_DAY, |us| us.div_euclid(MICROS_PER_DAY))).collect(),
    })
}

/// The group of rows with no day (a dataset without `day`, or a NULL day).
pub const NO_DAY: i64 = i64::MIN;

/// Each row's `hash_record_extended(row, ROW_HASH_SEED)`, as the duplicate check computes
/// it beside its own digest (see `dedupe::row_digests`).
pub const COL_ROW_HASH: &str = "__row_hash";

/// The seed of the row hashes. Not 0: under seed 0 PostgreSQL hashes a float's 0.0 like a
/// NULL (both 0), so an edit between the two would not change the digest.
pub const ROW_HASH_SEED: u64 = 1;

/// `hash_record_extended(row, ROW_HASH_SEED)` of each row, as the server computes it over
/// the declared columns in declared order (a NULL counts as 0).
pub fn row_hashes(ds: &Dataset, df: &DataFrame) -> PolarsResult<Vec<u64>> {
    let fields: Vec<&crate::dataset::Field> = ds.fields.iter().collect();
    rows::fold(&fields, df, 0u64, |h, cell| *h = hash::combine(*h, cell_hash(cell)))
}

/// One cell's element of `hash_record_extended(row, ROW_HASH_SEED)` (a NULL is 0).
pub fn cell_hash(cell: Cell<'_>) -> u64 {
    const S: u64 = ROW_HASH_SEED;
    let element = match cell {
        Cell::Text(v) => v.map(|v| hash::text(v, S)),
        Cell::Integer(v) => v.map(|v| hash::int4(v, S)),
        Cell::Bigint(v) => v.map(|v| hash::int8(v, S)),
        Cell::Double(v) => v.map(|v| hash::float8(v, S)),
        Cell::Numeric(v) => v.map(|v| hash::numeric(v, S)),
        Cell::Boolean(v) => v.map(|v| hash::boolean(v, S)),
        Cell::Timestamp(v) => v.map(|v| hash::timestamp(v, S)),
        Cell::Date(v) => v.map(|v| hash::date(v, S)),
        // Accepted rows hold values jsonb can store (the cast checked).
        Cell::Json(v) => v.and_then(|v| json::parse(v).ok()).map(|j| hash::jsonb(&j, S)),
    };
    element.unwrap_or(0)
}

/// One comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub table: String,
    pub check: String,
    pub expected: String,
    pub actual: String,
    pub diff: String,
    pub ok: bool,
}

fn count_check(table: &str, check: &str, expected: u64, actual: u64) -> Check {
    let diff = actual as i128 - expected as i128;
    Check {
        table: table.into(),
        check: check.into(),
        expected: expected.to_string(),
        actual: actual.to_string(),
        diff: if diff == 0 { String::new() } else { format!("{diff:+}") },
        ok: diff == 0,
    }
}

fn text_check(table: &str, check: &str, expected: &str, actual: &str) -> Check {
    let ok = expected == actual;
    Check {
        table: table.into(),
        check: check.into(),
        expected: expected.into(),
        actual: actual.into(),
        diff: if ok { String::new() } else { "differs".into() },
        ok,
    }
}

/// What the file says: the load's counts plus the figures of the accepted rows.
pub struct SourceSide {
    pub records: u64,
    pub rejected: BTreeMap<String, u64>,
    pub checksum: String,
    pub loaded: Figures,
}

/// Reads a file as its load did (`superseding`: as a merge), reduced to figures.
pub fn read_source(ds: &'static Dataset, input: &crate::source::Input, superseding: bool, progress: &dyn Progress) -> Result<SourceSide> {
    if let crate::source::Input::File(path) = input {
        if !path.exists() {
            return Err(Failure::Input(format!("{}: no such file", path.display())).into());
        }
    }
    let mut figures = Figures::default();
    let mut failure = None;
    let stats = check_file(ds, input, superseding, progress, |checked| match figures.add(ds, &checked.accepted) {
        Ok(()) => {
            figures.remove(&checked.retracted);
            true
        }
        Err(e) => {
            failure = Some(e);
            false
        }
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok(SourceSide { records: stats.records, rejected: stats.rejected, checksum: stats.checksum, loaded: figures })
}

/// The source side as the load of a file with this checksum recorded it (its records,
/// rejects per reason and per-day figures), if the ledger has such a load; `validate` then
/// need not parse the file again (`--reread` does). The load computed these figures from
/// the rows it sent, with the same functions a re-read uses.
pub fn ledger_source(ds: &Dataset, client: &mut Client, schema: &str, checksum: &str) -> Result<Option<(i64, SourceSide)>> {
    if !exists(client, schema, LEDGER)? {
        return Ok(None);
    }
    let sql = format!(
        // Through to_jsonb: a ledger from before loads recorded figures has no such column
        // (a load adds it), and simply has no figures.
        "SELECT id, records, rejected_by_reason::text, (to_jsonb(l) -> 'figures')::text FROM {}.{LEDGER} l
         WHERE table_name = $1 AND checksum = $2 AND status = 'ok' AND jsonb_typeof(to_jsonb(l) -> 'figures') = 'object'
         ORDER BY id DESC LIMIT 1",
        ident(schema)
    );
    let Some(row) = client.query_opt(&sql, &[&ds.name, &checksum]).map_err(db)? else { return Ok(None) };
    let (id, records, rejected, figures): (i64, i64, Option<String>, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
    let bad = |what: &str| Failure::Database(format!("{LEDGER} load {id}: unreadable {what}"));
    let rejected: BTreeMap<String, u64> =
        serde_json::from_str(rejected.as_deref().unwrap_or("{}")).map_err(|_| bad("rejected_by_reason"))?;
    let figures: serde_json::Value = serde_json::from_str(&figures).map_err(|_| bad("figures"))?;
    if figures["columns"].as_str() != Some(Figures::columns_of(ds).as_str()) {
        // Recorded under another contract: the file is read again.
        return Ok(None);
    }
    let mut rejected = rejected;
    // As the file alone says: without the rows turned away for keys loaded before (compare
    // adds those back from the ledger, for a re-read's figures too).
    let turned_away: u64 = figures["turned_away"].as_array().map_or(0, |days| days.iter().filter_map(|d| d[1].as_u64()).sum());
    if let Some(n) = rejected.get_mut(crate::quality::DUPLICATE) {
        *n -= turned_away.min(*n);
    }
    let mut loaded = Figures { columns: Figures::columns_of(ds), ..Figures::default() };
    for entry in figures["days"].as_array().ok_or_else(|| bad("figures"))? {
        let day = entry[0].as_i64().unwrap_or(NO_DAY);
        let rows = entry[1].as_u64().ok_or_else(|| bad("figures"))?;
        let digest = entry[2].as_str().and_then(|d| d.parse::<i128>().ok()).ok_or_else(|| bad("figures"))?;
        loaded.days.insert(day, Day { rows, digest });
    }
    Ok(Some((id, SourceSide { records: records as u64, rejected, checksum: checksum.to_string(), loaded })))
}

/// The ledger entry the comparison is made against.
pub struct LoadRecord {
    id: i64,
    checksum: String,
    records: i64,
}

/// What PostgreSQL holds for one table.
pub struct DatabaseSide {
    load: Option<LoadRecord>,
    table_exists: bool,
    rejects_exist: bool,
    loaded: Figures,
    rejected: BTreeMap<String, u64>,
    /// The table's columns and types, as the catalog has them.
    columns: Vec<(String, String)>,
    /// Rows of the file that the table holds under other loads: those a merge found equal
    /// (left under the earlier load), and those later merges replaced.
    elsewhere: Figures,
    /// Rows of the file a keyed append turned away (their key was loaded before).
    turned_away: Figures,
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
    let columns = crate::pg::load::table_columns(client, schema, &ds.name)?;
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

fn exists(client: &mut Client, schema: &str, table: &str) -> Result<bool> {
    let row = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{}.{}", ident(schema), ident(table))]).map_err(db)?;
    Ok(row.get(0))
}

/// The table's ledger entry with `checksum` if there is one, else its latest.
fn ledger_entry(ds: &Dataset, client: &mut Client, schema: &str, checksum: Option<&str>) -> Result<Option<LoadRecord>> {
    if !exists(client, schema, LEDGER)? {
        return Ok(None);
    }
    let sql = format!(
        "SELECT id, checksum, records FROM {}.{LEDGER} WHERE table_name = $1 AND status = 'ok'
         ORDER BY (checksum = $2) IS TRUE DESC, id DESC LIMIT 1",
        ident(schema)
    );
    Ok(client.query_opt(&sql, &[&ds.name, &checksum]).map_err(db)?.map(|r| LoadRecord {
        id: r.get(0),
        checksum: r.get(1),
        records: r.get(2),
    }))
}

/// Whether the load of the file with `checksum` was a merge (its file is then read as a
/// merge reads it: the later row with a key wins).
pub fn merged_file(ds: &Dataset, client: &mut Client, schema: &str, checksum: &str) -> Result<bool> {
    if !exists(client, schema, LEDGER)? {
        return Ok(false);
    }
    let sql = format!(
        "SELECT mode = 'merge' FROM {}.{LEDGER} WHERE table_name = $1 AND checksum = $2 AND status = 'ok' ORDER BY id DESC LIMIT 1",
        ident(schema)
    );
    Ok(client.query_opt(&sql, &[&ds.name, &checksum]).map_err(db)?.is_some_and(|r| r.get(0)))
}

/// The checksum the ledger recorded for an object with this URL, ETag and size, if loaded.
pub fn object_checksum(
    ds: &Dataset,
    client: &mut Client,
    schema: &str,
    url: &str,
    etag: Option<&str>,
    size: u64,
) -> Result<Option<String>> {
    if !exists(client, schema, LEDGER)? {
        return Ok(None);
    }
    let sql = format!(
        "SELECT checksum FROM {}.{LEDGER} WHERE table_name = $1 AND file = $2 AND etag IS NOT DISTINCT FROM $3 AND file_size = $4
         AND status = 'ok' ORDER BY id DESC LIMIT 1",
        ident(schema)
    );
    Ok(client.query_opt(&sql, &[&ds.name, &url, &etag, &(size as i64)]).map_err(db)?.map(|r| r.get(0)))
}

/// Whether any load of the table was a merge.
pub fn has_merges(ds: &Dataset, client: &mut Client, schema: &str) -> Result<bool> {
    if !exists(client, schema, LEDGER)? {
        return Ok(false);
    }
    let sql = format!("SELECT EXISTS (SELECT FROM {}.{LEDGER} WHERE table_name = $1 AND mode = 'merge' AND status = 'ok')", ident(schema));
    Ok(client.query_one(&sql, &[&ds.name]).map_err(db)?.get(0))
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

/// Rows of load `id`'s file that the table does not hold under that load, from the ledger:
/// those held under other loads (equal to rows its own merge found, or replaced by later
/// merges), and those a keyed append turned away for a key already loaded (rejects).
fn elsewhere(ds: &Dataset, client: &mut Client, schema: &str, id: i64) -> Result<(Figures, Figures)> {
    let sql = format!(
        // Through to_jsonb, as in `ledger_source`: an old ledger has no figures column.
        "SELECT false, (e ->> 0)::bigint, (e ->> 1)::bigint, e ->> 2
         FROM {l} l, jsonb_array_elements(coalesce(to_jsonb(l) #> '{{figures,unchanged}}', '[]')) e WHERE id = $2
         UNION ALL
         SELECT false, (e ->> 1)::bigint, (e ->> 2)::bigint, e ->> 3
         FROM {l} l, jsonb_array_elements(coalesce(to_jsonb(l) #> '{{figures,taken}}', '[]')) e
         WHERE table_name = $1 AND status = 'ok' AND id > $2 AND (e ->> 0)::bigint = $2
         UNION ALL
         SELECT true, (e ->> 0)::bigint, (e ->> 1)::bigint, e ->> 2
         FROM {l} l, jsonb_array_elements(coalesce(to_jsonb(l) #> '{{figures,turned_away}}', '[]')) e WHERE id = $2",
        l = format!("{}.{LEDGER}", ident(schema))
    );
    let (mut held, mut turned_away) = (Figures::default(), Figures::default());
    for r in client.query(&sql, &[&ds.name, &id]).map_err(db)? {
        let (rejected, day, rows, digest): (bool, Option<i64>, i64, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        let figures = if rejected { &mut turned_away } else { &mut held };
        let d = figures.days.entry(day.unwrap_or(NO_DAY)).or_default();
        d.rows += rows as u64;
        d.digest += digest.parse::<i128>().map_err(|_| Failure::Database(format!("{LEDGER}: unreadable figures near load {id}")))?;
    }
    Ok((held, turned_away))
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

/// A row's day in SQL, as `days_of` computes it here: days since 1970-01-01 (UTC, whatever
/// the session's time zone), NULL without a day column. `alias` names the row.
pub fn day_sql(ds: &Dataset, alias: &str) -> String {
    match &ds.day_field {
        Some(d) if ds.field(d).is_some_and(|f| f.kind == crate::dataset::Kind::Date) => format!("{alias}.{} - date '1970-01-01'", ident(d)),
        Some(d) => format!("({alias}.{} AT TIME ZONE 'UTC')::date - date '1970-01-01'", ident(d)),
        None => "NULL::int".to_string(),
    }
}

/// Compares one table's two sides, check by check.
pub fn compare(ds: &Dataset, source: &SourceSide, db: &DatabaseSide) -> Vec<Check> {
    let t = ds.name.as_str();
    let mut expected = source.loaded.clone();
    expected.subtract(&db.elsewhere);
    expected.subtract(&db.turned_away);
    // Rows turned away for a key already in the table are duplicates the file alone does
    // not show.
    let mut rejected = source.rejected.clone();
    if db.turned_away.rows() > 0 {
        *rejected.entry(crate::quality::DUPLICATE.to_string()).or_default() += db.turned_away.rows();
    }
    let mut checks = Vec::new();
    let short = |c: &str| c.chars().take(16).collect::<String>();
    checks.push(text_check(
        t,
        "source checksum (file vs tier_loads)",
        &short(&source.checksum),
        &db.load.as_ref().map(|l| short(&l.checksum)).unwrap_or_else(|| "no load recorded".into()),
    ));
    if !db.table_exists {
        checks.push(text_check(t, "table exists", "yes", "missing"));
        return checks;
    }
    checks.push(columns_check(ds, &db.columns));
    if let Some(l) = &db.load {
        checks.push(count_check(t, "records (file vs tier_loads)", source.records, l.records as u64));
    }
    checks.push(count_check(t, "loaded rows", expected.rows(), db.loaded.rows()));
    if !db.rejects_exist {
        checks.push(text_check(t, "rejects table exists", "yes", "missing"));
    }
    checks.push(count_check(t, "rejected rows", rejected.values().sum(), db.rejected.values().sum()));
    let reasons: BTreeSet<&String> = rejected.keys().chain(db.rejected.keys()).collect();
    for r in reasons {
        let (e, a) = (rejected.get(r).copied().unwrap_or(0), db.rejected.get(r).copied().unwrap_or(0));
        checks.push(count_check(t, &format!("  rejected: {r}"), e, a));
    }
    let (expected, actual) = (&expected.days, &db.loaded.days);
    let days: BTreeSet<&i64> = expected.keys().chain(actual.keys()).collect();
    let get = |m: &BTreeMap<i64, Day>, d: &i64| m.get(d).copied().unwrap_or_default();
    let differing: Vec<&i64> = days.iter().copied().filter(|d| get(expected, d).rows != get(actual, d).rows).collect();
    let mut days_check = count_check(t, "days with rows", expected.len() as u64, actual.len() as u64);
    if !differing.is_empty() {
        days_check.ok = false;
        days_check.diff = format!("{} days differ", differing.len());
    }
    checks.push(days_check);
    for d in differing {
        checks.push(count_check(t, &format!("  rows on {}", day_name(*d)), get(expected, d).rows, get(actual, d).rows));
    }
    let expected_digest: i128 = expected.values().map(|d| d.digest).sum();
    let mut digest = text_check(t, "content digest", &digest_text(expected_digest), &digest_text(db.loaded.digest()));
    // Days with the same rows but other contents: an edited value.
    let edited: Vec<String> = days
        .iter()
        .filter(|d| get(expected, d).rows == get(actual, d).rows && get(expected, d).digest != get(actual, d).digest)
        .map(|d| day_name(**d))
        .collect();
    if !edited.is_empty() {
        digest.ok = false;
        let shown: Vec<&str> = edited.iter().take(5).map(String::as_str).collect();
        let more = if edited.len() > 5 { format!(" and {} more", edited.len() - 5) } else { String::new() };
        digest.diff = format!("contents differ on {}{more}", shown.join(", "));
    }
    checks.push(digest);
    checks
}

/// The table's columns against the contract's: a column the contract does not declare (left
/// alone by loads), one it declares that the table lacks, or one of another type.
fn columns_check(ds: &Dataset, table: &[(String, String)]) -> Check {
    let mut problems = Vec::new();
    for f in &ds.fields {
        match table.iter().find(|(name, _)| *name == f.name) {
            None => problems.push(format!("missing {}", f.name)),
            Some((_, ty)) if ty != f.kind.catalog_type() => problems.push(format!("{} is {ty}, declared {}", f.name, f.kind.name())),
            Some(_) => {}
        }
    }
    for (name, _) in table {
        if name != "load_id" && ds.field(name).is_none() {
            problems.push(format!("undeclared {name}"));
        }
    }
    let mut check = count_check(&ds.name, "columns (contract vs table)", ds.fields.len() as u64 + 1, table.len() as u64);
    if !problems.is_empty() {
        check.ok = false;
        check.diff = problems.join("; ");
    }
    check
}

fn day_name(day: i64) -> String {
    if day == NO_DAY {
        return "(no day)".to_string();
    }
    day_of_micros(day * MICROS_PER_DAY)
}

/// A digest sum, whole (the sum of signed 64-bit hashes, as the server prints it).
fn digest_text(sum: i128) -> String {
    sum.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(cities: &[&str], micros: &[i64], humidity: &[Option<f64>]) -> DataFrame {
        let mut cols: Vec<Column> = Vec::new();
        for f in &crate::contract::example("weather").fields {
            let n = cities.len();
            cols.push(match f.name.as_str() {
                "city" => Column::new("city".into(), cities.to_vec()),
                "date_time" => Int64Chunked::new("date_time".into(), micros).into_datetime(TimeUnit::Microseconds, None).into_column(),
                "humidity" => Column::new("humidity".into(), humidity.to_vec()),
                "preciptype" => Column::new("preciptype".into(), vec![None::<&str>; n]),
                other => Column::new(other.into(), vec![None::<f64>; n]),
            });
        }
        DataFrame::new(cols).unwrap()
    }

    #[test]
    fn figures_ignore_order_and_catch_edits() {
        let day = 86_400_000_000i64;
        let a = frame(&["Oslo", "Rome"], &[0, day], &[Some(0.5), None]);
        let b = frame(&["Rome", "Oslo"], &[day, 0], &[None, Some(0.5)]);
        let edited = frame(&["Rome", "Oslo"], &[day, 0], &[None, Some(0.51)]);
        let fig = |df: &DataFrame| {
            let mut f = Figures::default();
            f.add(crate::contract::example("weather"), df).unwrap();
            f
        };
        assert_eq!(fig(&a), fig(&b));
        assert_ne!(fig(&a).digest(), fig(&edited).digest());
        assert_eq!(fig(&a).days[&1], fig(&edited).days[&1]);
        assert_ne!(fig(&a).days[&0], fig(&edited).days[&0]);
        assert_eq!(fig(&a).days.iter().map(|(d, f)| (*d, f.rows)).collect::<Vec<_>>(), vec![(0, 1), (1, 1)]);
    }
}

//! The ledger, `tier_loads`: one row per load of any dataset of a schema, what `validate`,
//! re-runs and the report read. Every query of the ledger is here.

use std::collections::BTreeMap;
use std::time::SystemTime;

use anyhow::Result;
use postgres::Client;

use super::connect::{describe, exec, ident, table_exists as exists};
use crate::dataset::{Dataset, Mode, LEDGER};
use crate::error::Failure;
use crate::figures::{Figures, LedgerFigures, SourceSide, SplitSource, NO_DAY};
use crate::stats::{unix_seconds, LoadStats};

/// The latest load of each table, as the report shows it (run on the report's search path).
pub const LATEST_LOADS: &str = "select distinct on (table_name) table_name, file, status, mode, records, loaded, rejected,
    rejected_by_reason::text as rejected_by_reason, to_char(finished_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') as finished_utc
    from tier_loads order by table_name, id desc";

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
             -- A split log's tables: what each was given, with its figures.
             ALTER TABLE {s}.{LEDGER} ADD COLUMN IF NOT EXISTS tables jsonb;
             -- The Iceberg snapshot of each table the load committed to the lake.
             ALTER TABLE {s}.{LEDGER} ADD COLUMN IF NOT EXISTS lake_snapshots jsonb;
             -- A load from a Kafka topic: the partition and the offsets it read, both ends included.
             ALTER TABLE {s}.{LEDGER} ADD COLUMN IF NOT EXISTS topic text,
               ADD COLUMN IF NOT EXISTS topic_partition integer, ADD COLUMN IF NOT EXISTS first_offset bigint,
               ADD COLUMN IF NOT EXISTS last_offset bigint;
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
            rejected_by_reason, warnings, mode, tool_version, status, error, figures, inserted, updated, unchanged, schema_changes, etag, tables,
            lake_snapshots, topic, topic_partition, first_offset, last_offset)
         VALUES (COALESCE($1, nextval(pg_get_serial_sequence('{q}.{LEDGER}', 'id'))), $2, $3, $4, $5, to_timestamp($6), clock_timestamp(), $7, $8, $9,
            $10::text::jsonb, $11::text::jsonb, $12, $13, $14, $15, $16::text::jsonb, $17, $18, $19, $20::text::jsonb, $21, $22::text::jsonb, $23::text::jsonb,
            $24, $25, $26, $27)",
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
                &stats.tables_json(),
                // A failed load's snapshots were never committed.
                &(status == "ok" && !stats.lake_snapshots.is_empty()).then(|| serde_json::to_string(&stats.lake_snapshots)).transpose()?,
                &stats.offsets.as_ref().map(|o| o.topic.clone()),
                &stats.offsets.as_ref().map(|o| o.partition),
                &stats.offsets.as_ref().map(|o| o.first),
                &stats.offsets.as_ref().map(|o| o.last),
            ],
        )
        .map_err(|e| Failure::Database(format!("cannot record the load in {LEDGER}: {}", describe(&e))))?;
    Ok(())
}

// What validate reads from the ledger.

/// The latest `ok` load of `table` of a file with `checksum` that recorded its `column`
/// (figures or tables) as a JSON `kind`: its id, records, rejects per reason, and that
/// column's text.
struct RecordedLoad {
    id: i64,
    records: i64,
    rejected: BTreeMap<String, u64>,
    recorded: String,
}

fn recorded_load(client: &mut Client, schema: &str, table: &str, checksum: &str, column: &str, kind: &str) -> Result<Option<RecordedLoad>> {
    if !exists(client, schema, LEDGER)? {
        return Ok(None);
    }
    let sql = format!(
        // Through to_jsonb: a ledger from before loads recorded figures has no such column
        // (a load adds it), and simply has no figures.
        "SELECT id, records, rejected_by_reason::text, (to_jsonb(l) -> $3::text)::text FROM {}.{LEDGER} l
         WHERE table_name = $1 AND checksum = $2 AND status = 'ok' AND jsonb_typeof(to_jsonb(l) -> $3::text) = $4::text
         ORDER BY id DESC LIMIT 1",
        ident(schema)
    );
    let Some(row) = client.query_opt(&sql, &[&table, &checksum, &column, &kind]).map_err(db)? else { return Ok(None) };
    let (id, records, rejected, recorded): (i64, i64, Option<String>, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
    let rejected = serde_json::from_str(rejected.as_deref().unwrap_or("{}"))
        .map_err(|_| Failure::Database(format!("{LEDGER} load {id}: unreadable rejected_by_reason")))?;
    Ok(Some(RecordedLoad { id, records, rejected, recorded }))
}

/// The rejects as the file alone says: without the rows turned away for keys loaded before
/// (compare adds those back from the ledger, for a re-read's figures too).
fn without_turned_away(rejected: &mut BTreeMap<String, u64>, turned_away: u64) {
    if let Some(n) = rejected.get_mut(crate::reasons::DUPLICATE) {
        *n -= turned_away.min(*n);
    }
}

/// The source side as the load of a file with this checksum recorded it (its records,
/// rejects per reason and per-day figures), if the ledger has such a load; `validate` then
/// need not parse the file again (`--reread` does). The load computed these figures from
/// the rows it sent, with the same functions a re-read uses.
pub fn ledger_source(ds: &Dataset, client: &mut Client, schema: &str, checksum: &str) -> Result<Option<(i64, SourceSide)>> {
    let Some(RecordedLoad { id, records, mut rejected, recorded: figures }) =
        recorded_load(client, schema, &ds.name, checksum, "figures", "object")?
    else {
        return Ok(None);
    };
    let bad = |what: &str| Failure::Database(format!("{LEDGER} load {id}: unreadable {what}"));
    let figures: LedgerFigures = serde_json::from_str(&figures).map_err(|_| bad("figures"))?;
    if figures.columns != Figures::columns_of(ds) {
        // Recorded under another contract: the file is read again.
        return Ok(None);
    }
    let turned_away: u64 = figures.turned_away.iter().flatten().map(|(_, rows, _)| rows).sum();
    without_turned_away(&mut rejected, turned_away);
    let loaded = LedgerFigures::figures(&figures.days, &figures.columns).ok_or_else(|| bad("figures"))?;
    Ok(Some((id, SourceSide { records: records as u64, rejected, checksum: checksum.to_string(), loaded })))
}

/// The ledger entry the comparison is made against.
pub struct LoadRecord {
    pub id: i64,
    pub checksum: String,
    pub records: i64,
}

/// The table's ledger entry with `checksum` if there is one, else its latest.
pub(super) fn ledger_entry(ds: &Dataset, client: &mut Client, schema: &str, checksum: Option<&str>) -> Result<Option<LoadRecord>> {
    if !exists(client, schema, LEDGER)? {
        return Ok(None);
    }
    let sql = format!(
        "SELECT id, checksum, records FROM {}.{LEDGER} WHERE table_name = $1 AND status = 'ok'
         ORDER BY (checksum = $2) IS TRUE DESC, id DESC LIMIT 1",
        ident(schema)
    );
    Ok(client.query_opt(&sql, &[&ds.ledger_name(), &checksum]).map_err(db)?.map(|r| LoadRecord {
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
    Ok(client.query_opt(&sql, &[&ds.ledger_name(), &checksum]).map_err(db)?.is_some_and(|r| r.get(0)))
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
    Ok(client.query_opt(&sql, &[&ds.ledger_name(), &url, &etag, &(size as i64)]).map_err(db)?.map(|r| r.get(0)))
}

/// Whether any load of the table was a merge.
pub fn has_merges(ds: &Dataset, client: &mut Client, schema: &str) -> Result<bool> {
    if !exists(client, schema, LEDGER)? {
        return Ok(false);
    }
    let sql = format!("SELECT EXISTS (SELECT FROM {}.{LEDGER} WHERE table_name = $1 AND mode = 'merge' AND status = 'ok')", ident(schema));
    Ok(client.query_one(&sql, &[&ds.ledger_name()]).map_err(db)?.get(0))
}

/// Rows of load `id`'s file that the table does not hold under that load, from the ledger:
/// those held under other loads (equal to rows its own merge found, or replaced by later
/// merges), and those a keyed append turned away for a key already loaded (rejects).
pub(super) fn elsewhere(ds: &Dataset, client: &mut Client, schema: &str, id: i64) -> Result<(Figures, Figures)> {
    let figures = figures_of(ds);
    let sql = format!(
        // Through to_jsonb, as in `ledger_source`: an old ledger has no figures column.
        "SELECT false, (e ->> 0)::bigint, (e ->> 1)::bigint, e ->> 2
         FROM {l} l, jsonb_array_elements(coalesce({figures} -> 'unchanged', '[]')) e WHERE id = $2
         UNION ALL
         SELECT false, (e ->> 1)::bigint, (e ->> 2)::bigint, e ->> 3
         FROM {l} l, jsonb_array_elements(coalesce({figures} -> 'taken', '[]')) e
         WHERE table_name = $1 AND status = 'ok' AND id > $2 AND (e ->> 0)::bigint = $2
         UNION ALL
         SELECT true, (e ->> 0)::bigint, (e ->> 1)::bigint, e ->> 2
         FROM {l} l, jsonb_array_elements(coalesce({figures} -> 'turned_away', '[]')) e WHERE id = $2",
        l = format!("{}.{LEDGER}", ident(schema))
    );
    let (mut held, mut turned_away) = (Figures::default(), Figures::default());
    for r in client.query(&sql, &[&ds.ledger_name(), &id]).map_err(db)? {
        let (rejected, day, rows, digest): (bool, Option<i64>, i64, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        let figures = if rejected { &mut turned_away } else { &mut held };
        let d = figures.days.entry(day.unwrap_or(NO_DAY)).or_default();
        d.rows += rows as u64;
        d.digest += digest.parse::<i128>().map_err(|_| Failure::Database(format!("{LEDGER}: unreadable figures near load {id}")))?;
    }
    Ok((held, turned_away))
}

/// The SQL of one table's figures in a ledger row `l`: its `figures`, or, for a table of a
/// split log, its entry's in `tables`. (Table names are plain identifiers, as contracts check.)
fn figures_of(ds: &Dataset) -> String {
    match ds.log.is_some() || ds.writes_many() {
        false => "(to_jsonb(l) -> 'figures')".to_string(),
        true => format!(
            "(SELECT t -> 'figures' FROM jsonb_array_elements(coalesce(to_jsonb(l) -> 'tables', '[]')) t WHERE t ->> 'table' = '{}')",
            ds.name.replace('\'', "''")
        ),
    }
}

/// The source side of a split log as the load of a file with this checksum recorded it:
/// its records and rejects, and each table's figures (in `Dataset::tables` order); none
/// when the ledger has no such load, or one recorded under other tables or columns.
pub fn ledger_split_source(log: &'static Dataset, client: &mut Client, schema: &str, checksum: &str) -> Result<Option<(i64, SplitSource)>> {
    let Some(RecordedLoad { id, records, mut rejected, recorded: tables }) =
        recorded_load(client, schema, &log.name, checksum, "tables", "array")?
    else {
        return Ok(None);
    };
    let bad = |what: &str| Failure::Database(format!("{LEDGER} load {id}: unreadable {what}"));
    #[derive(serde::Deserialize)]
    struct Entry {
        table: String,
        figures: Option<LedgerFigures>,
    }
    let recorded: Vec<Entry> = serde_json::from_str(&tables).map_err(|_| bad("tables"))?;
    let mut figures = Vec::new();
    let mut turned_away = 0;
    for t in log.tables() {
        let Some(entry) = recorded.iter().find(|e| e.table == t.name) else { return Ok(None) };
        let Some(f) = &entry.figures else { return Ok(None) };
        if f.columns != Figures::columns_of(t) {
            return Ok(None);
        }
        if !t.is_child() {
            turned_away += f.turned_away.iter().flatten().map(|(_, rows, _)| rows).sum::<u64>();
        }
        figures.push(LedgerFigures::figures(&f.days, &f.columns).ok_or_else(|| bad("tables"))?);
    }
    without_turned_away(&mut rejected, turned_away);
    Ok(Some((id, SplitSource { records: records as u64, rejected, checksum: checksum.to_string(), tables: figures })))
}

fn db(e: postgres::Error) -> anyhow::Error {
    Failure::Database(describe(&e)).into()
}

/// The id the load about to be written will have in the ledger (drawn before its rows, which
/// carry it as `load_id`).
pub fn next_load_id(client: &mut Client, schema: &str) -> Result<i64> {
    let sql = format!("SELECT nextval(pg_get_serial_sequence('{}.{LEDGER}', 'id'))", ident(schema).replace('\'', "''"));
    Ok(client.query_one(&sql, &[]).map_err(db)?.get(0))
}

/// The load of an object with this URL, ETag and size, if the ledger holds one.
pub fn object_load(client: &mut Client, schema: &str, table: &str, url: &str, etag: Option<&str>, size: u64) -> Result<Option<i64>> {
    let sql = format!(
        "SELECT id FROM {}.{LEDGER} WHERE table_name = $1 AND file = $2 AND etag IS NOT DISTINCT FROM $3 AND file_size = $4 AND status = 'ok' LIMIT 1",
        ident(schema)
    );
    Ok(client.query_opt(&sql, &[&table, &url, &etag, &(size as i64)]).map_err(db)?.map(|r| r.get(0)))
}

/// A replace swaps out every earlier load's rows: the ledger's `ok` loads of a table are
/// exactly those whose rows it holds.
pub fn mark_replaced(client: &mut Client, schema: &str, table: &str) -> Result<()> {
    client
        .execute(&format!("UPDATE {}.{LEDGER} SET status = 'replaced' WHERE table_name = $1 AND status = 'ok'", ident(schema)), &[&table])
        .map_err(|e| Failure::Database(format!("cannot update {LEDGER}: {}", describe(&e))))?;
    Ok(())
}

/// The offset after the last one loaded into `table` from a Kafka partition, if any was.
pub fn next_offset(client: &mut Client, schema: &str, table: &str, topic: &str, partition: i32) -> Result<Option<i64>> {
    if !exists(client, schema, LEDGER)? {
        return Ok(None);
    }
    let sql = format!(
        "SELECT max(last_offset) + 1 FROM {}.{LEDGER} WHERE table_name = $1 AND topic = $2 AND topic_partition = $3 AND status = 'ok'",
        ident(schema)
    );
    Ok(client.query_one(&sql, &[&table, &topic, &partition]).map_err(db)?.get(0))
}

/// Claims a load's offsets in its transaction: they must start right after the last ones
/// loaded from the partition (none loaded twice, none skipped), whatever other process
/// loaded them. Under a lock per table and partition, held to the commit, so of two loads
/// of the same offsets at once, the second finds the first's and is refused.
pub fn claim_offsets(client: &mut Client, schema: &str, table: &str, range: &crate::stats::OffsetRange) -> Result<()> {
    let key = format!("{schema}.{table}/{}/{}", range.topic, range.partition);
    client.execute("SELECT pg_advisory_xact_lock(hashtext('tier:offsets'), hashtext($1))", &[&key]).map_err(db)?;
    let next = next_offset(client, schema, table, &range.topic, range.partition)?;
    let partition = format!("{}/{}", range.topic, range.partition);
    match next {
        Some(next) if next > range.first => Err(Failure::AlreadyLoaded(format!(
            "{partition}: offsets {}..{} overlap those loaded into {table} already (up to {}); nothing of this batch was loaded",
            range.first,
            range.last,
            next - 1
        ))
        .into()),
        Some(next) if next < range.first => Err(Failure::Input(format!(
            "{partition}: offsets {next}..{} would be skipped (loaded into {table} up to {}, this batch starts at {}); nothing of it was loaded",
            range.first - 1,
            next - 1,
            range.first
        ))
        .into()),
        _ => Ok(()),
    }
}

/// Holds a partition for this session (the loader's own connection) while it loads
/// batches from it: another tier process waits for it, or takes other partitions first.
/// `wait` false: only if it is free now. Released by `release_partition` or the session's end.
pub fn hold_partition(client: &mut Client, schema: &str, table: &str, topic: &str, partition: i32, wait: bool) -> Result<bool> {
    let key = format!("{schema}.{table}/{topic}/{partition}");
    let sql = match wait {
        true => "SELECT pg_advisory_lock(hashtext('tier:partition'), hashtext($1)), true",
        false => "SELECT 0, pg_try_advisory_lock(hashtext('tier:partition'), hashtext($1))",
    };
    Ok(client.query_one(sql, &[&key]).map_err(db)?.get(1))
}

pub fn release_partition(client: &mut Client, schema: &str, table: &str, topic: &str, partition: i32) -> Result<()> {
    let key = format!("{schema}.{table}/{topic}/{partition}");
    client.execute("SELECT pg_advisory_unlock(hashtext('tier:partition'), hashtext($1))", &[&key]).map_err(db)?;
    Ok(())
}

/// The offset ranges loaded into `table` from a topic, per partition in order: (partition,
/// first, last), both ends included (a partition's first load may read none: last < first).
pub fn offset_ranges(client: &mut Client, schema: &str, table: &str, topic: &str) -> Result<Vec<(i32, i64, i64)>> {
    if !exists(client, schema, LEDGER)? {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT topic_partition, first_offset, last_offset FROM {}.{LEDGER}
         WHERE table_name = $1 AND topic = $2 AND status = 'ok' ORDER BY topic_partition, first_offset, id",
        ident(schema)
    );
    Ok(client.query(&sql, &[&table, &topic]).map_err(db)?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// The inputs (paths, object URLs) loaded into `table`, as the ledger names them.
pub fn loaded_files(client: &mut Client, schema: &str, table: &str) -> Result<std::collections::HashSet<String>> {
    if !exists(client, schema, LEDGER)? {
        return Ok(Default::default());
    }
    let sql = format!("SELECT DISTINCT file FROM {}.{LEDGER} WHERE table_name = $1 AND status = 'ok'", ident(schema));
    Ok(client.query(&sql, &[&table]).map_err(db)?.iter().map(|r| r.get(0)).collect())
}

/// The latest load of `table` that committed, if any.
pub fn latest_load(client: &mut Client, schema: &str, table: &str) -> Result<Option<i64>> {
    if !exists(client, schema, LEDGER)? {
        return Ok(None);
    }
    let sql = format!("SELECT max(id) FROM {}.{LEDGER} WHERE table_name = $1 AND status = 'ok'", ident(schema));
    Ok(client.query_one(&sql, &[&table]).map_err(db)?.get(0))
}

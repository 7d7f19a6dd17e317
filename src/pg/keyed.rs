//! A keyed append into tables that hold rows: the file's rows are staged (one COPY, as a
//! plain load streams), then the server looks their keys up in the tables in one pass,
//! turns away the records whose key is there (with their child rows) and inserts the rest
//! in key order. Looking each chunk's keys up at random before sending it, over a table
//! beyond the server's buffers, took 14.0 s where this takes 9.0 s (a million events into
//! four million, docs/performance.md).

use anyhow::Result;
use postgres::Client;

use super::connect::{describe, exec, ident};
use crate::dataset::Dataset;
use crate::error::Failure;
use crate::figures::{Day, Figures};

/// The records a staged keyed append turns away: their key is in the table already.
const HELD: &str = "pg_temp.tier_held";

/// One table of the load and its stage (a temporary table of its rows, each with its record).
pub struct Stage<'a> {
    pub ds: &'static Dataset,
    pub stage: &'a str,
    /// The table held rows when the load took its lock: its keys are looked up.
    pub held_keys: bool,
    /// Its key index is in place: the rows go in in key order (else it is built after).
    pub ordered: bool,
}

/// What a staged keyed append turned away, per table: the records whose key the table held,
/// with the load that holds it, and the figures of the rows turned away (a child table's:
/// those of the records turned away).
pub struct Settled {
    pub repeats: Vec<Vec<(u64, i64)>>,
    pub turned_away: Vec<Figures>,
}

impl Settled {
    /// Nothing turned away from any of `stages`' tables.
    pub fn nothing(stages: &[Stage]) -> Settled {
        Settled {
            repeats: stages.iter().map(|_| Vec::new()).collect(),
            turned_away: stages.iter().map(|t| Figures { columns: Figures::columns_of(t.ds), ..Figures::default() }).collect(),
        }
    }
}

/// Each table's keys looked up in it in one statement (the planner's choice: a hash join over
/// the table for a big file, index lookups for a small one), the records whose key the table
/// holds turned away with their child rows, and the rest inserted, in key order where the
/// index is in place (it then fills page by page, as a merge's insert does).
pub fn settle(client: &mut Client, schema: &str, stages: &[Stage]) -> Result<Settled> {
    let mut settled = Settled::nothing(stages);
    let db = |what: String, e: postgres::Error| Failure::Database(format!("{what}: {}", describe(&e)));
    let clock = std::time::Instant::now();
    let bare = HELD.trim_start_matches("pg_temp.");
    exec(
        client,
        "cannot look up keys",
        &format!(
            "DROP TABLE IF EXISTS {HELD};
             CREATE TEMP TABLE {bare} (__record bigint, tbl int, load_id bigint, day int, hash bigint) ON COMMIT DROP"
        ),
    )?;
    // The rows' figures (validate's: by day, the server's row hash is tier's), and the
    // statement that looks their keys up.
    let figures = |t: &Stage, alias: &str| {
        let cols: Vec<String> = t.ds.column_names().map(|c| format!("{alias}.{}", ident(c))).collect();
        format!(
            "{}, hash_record_extended(ROW({}), {})",
            super::catalog::day_sql(t.ds, alias),
            cols.join(", "),
            crate::figures::ROW_HASH_SEED
        )
    };
    for (i, t) in stages.iter().enumerate().filter(|(_, t)| t.held_keys) {
        // Its statistics, for the planner's choice of join (a temporary table has none; the
        // other stages are only read whole).
        exec(client, "cannot look up keys", &format!("ANALYZE {}", t.stage))?;
        let on: Vec<String> = t.ds.unique.iter().map(|k| format!("t.{k} = m.{k}", k = ident(k))).collect();
        let sql = format!(
            "INSERT INTO {HELD} SELECT m.__record, {i}, t.load_id, {} FROM {} m JOIN {}.{} t ON {}",
            figures(t, "m"),
            t.stage,
            ident(schema),
            ident(&t.ds.name),
            on.join(" AND ")
        );
        client.execute(&sql, &[]).map_err(|e| db(format!("cannot look up the keys of {}", t.ds.name), e))?;
    }
    exec(client, "cannot look up keys", &format!("ANALYZE {HELD}"))?;
    for r in client.query(&format!("SELECT __record, tbl, load_id FROM {HELD}"), &[]).map_err(|e| db("cannot look up keys".into(), e))? {
        let (record, table, load): (i64, i32, i64) = (r.get(0), r.get(1), r.get(2));
        settled.repeats[table as usize].push((record as u64, load));
    }
    tracing::info!("keyed append: {} keys held, looked up in {:.2?}", settled.repeats.iter().map(Vec::len).sum::<usize>(), clock.elapsed());
    let any_held = settled.repeats.iter().any(|r| !r.is_empty());
    let held = format!("EXISTS (SELECT FROM {HELD} h WHERE h.__record = m.__record)");
    for (i, (t, away)) in stages.iter().zip(settled.turned_away.iter_mut()).enumerate() {
        // The figures of the rows turned away: a table's were kept with their keys, a
        // child table's are those of the records turned away.
        let sql = match t.ds.is_child() {
            false => format!("SELECT day, count(*), sum(hash)::text FROM {HELD} WHERE tbl = {i} GROUP BY 1"),
            true => format!(
                "SELECT day, count(*), sum(hash)::text FROM (SELECT {} FROM {} m WHERE {held}) x(day, hash) GROUP BY 1",
                figures(t, "m"),
                t.stage
            ),
        };
        if any_held {
            for r in client.query(&sql, &[]).map_err(|e| db(format!("cannot look up the keys of {}", t.ds.name), e))? {
                let (day, rows, digest): (Option<i32>, i64, String) = (r.get(0), r.get(1), r.get(2));
                let day = day.map_or(crate::figures::NO_DAY, i64::from);
                let digest = digest.parse().map_err(|_| anyhow::anyhow!("digest sum {digest:?}"))?;
                away.days.insert(day, Day { rows: rows as u64, digest });
            }
        }
        let order = match !t.ordered || t.ds.unique.is_empty() {
            true => String::new(),
            false => format!(" ORDER BY {}", t.ds.unique.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ")),
        };
        let cols: Vec<String> = t.ds.column_names().map(ident).collect();
        let insert = format!(
            "INSERT INTO {}.{} ({cols}, load_id) SELECT {cols}, load_id FROM {} m{}{order}",
            ident(schema),
            ident(&t.ds.name),
            t.stage,
            if any_held { format!(" WHERE NOT {held}") } else { String::new() },
            cols = cols.join(", "),
        );
        client.execute(&insert, &[]).map_err(|e| db(format!("cannot insert into {}", t.ds.name), e))?;
    }
    tracing::info!("keyed append: inserted in {:.2?}", clock.elapsed());
    Ok(settled)
}

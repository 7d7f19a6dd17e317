//! A merge: the staged rows against the table on the dataset's key, new keys inserted,
//! changed rows updated, equal rows left alone; nothing is deleted.

use anyhow::Result;
use postgres::Client;

use super::connect::{describe, exec, ident};
use crate::dataset::Dataset;
use crate::error::Failure;
use crate::figures::{Day, Figures};
use crate::stats::Merged;

/// A merge's staged rows (a temporary table, dropped at the end of the transaction); each
/// has its record (`__record`, shared by a record's child rows) and a number (`__row`).
pub const MERGE_STAGE: &str = "pg_temp.tier_merge";

/// Merges the staged rows into the table on the key, in three statements:
///
/// 1. one join of the staged rows with the table's rows of the same key, kept aside:
///    for each, the old row's load, day and row hash (validate's figures: equal rows
///    stay under their earlier load, changed ones are taken from it), and whether the
///    contents are equal;
/// 2. `UPDATE` of the changed rows, found by key through the index;
/// 3. `INSERT` of the staged rows with no match, in key order (the unique index then
///    fills page by page rather than at random; with it, inserting costs ten times what
///    it does without, so this is most of a merge's time).
///
/// Cheaper than `INSERT ... ON CONFLICT DO UPDATE` here (each conflict check is a
/// speculative insertion), and the join says what the upsert's RETURNING cannot: the old
/// rows. The table's lock (exclusive among loads) keeps the rows still in between.
///
/// `unindexed`: the table's key index is set aside (a merge into an empty table, the index
/// built after): the rows go in as they come, with no order to keep for it.
pub fn merge_staged(client: &mut Client, ds: &Dataset, schema: &str, stage: &str, unindexed: bool) -> Result<Merged> {
    merge_on(client, ds, schema, stage, Merged::default(), unindexed)
}

/// A child table's merge: first the rows of its merged parents' arrays that the staged rows
/// do not replace (an array that got shorter, or went away) are deleted, and count as taken
/// from the loads that held them; then the staged rows merge on the parent's key and the
/// position, as `merge_staged` does. `parents`: the stage of the table the child's key is of.
pub fn merge_children(client: &mut Client, ds: &Dataset, schema: &str, stage: &str, parents: &str, unindexed: bool) -> Result<Merged> {
    let table = format!("{}.{}", ident(schema), ident(&ds.name));
    let cols: Vec<String> = ds.column_names().map(|c| format!("t.{}", ident(c))).collect();
    // The parent's key: the inherited columns that are no position.
    let parent_key: Vec<String> = ds
        .fields
        .iter()
        .filter(|f| matches!(&f.key, crate::dataset::Key::Parent(c) if !c.ends_with("position")))
        .map(|f| ident(&f.name))
        .collect();
    let keys: Vec<String> = ds.unique.iter().map(|k| ident(k)).collect();
    let sql = format!(
        "WITH gone AS (
           DELETE FROM {table} t WHERE ({pk}) IN (SELECT {pk} FROM {parents})
             AND NOT EXISTS (SELECT FROM {stage} m WHERE {same})
           RETURNING t.load_id, {day} AS day, hash_record_extended(ROW({cols}), {seed}) AS hash)
         SELECT load_id, day, count(*), sum(hash)::text FROM gone GROUP BY 1, 2",
        pk = parent_key.join(", "),
        same = keys.iter().map(|k| format!("m.{k} = t.{k}")).collect::<Vec<_>>().join(" AND "),
        day = crate::pg::catalog::day_sql(ds, "t"),
        cols = cols.join(", "),
        seed = crate::figures::ROW_HASH_SEED,
    );
    let mut merged = Merged::default();
    let rows =
        client.query(&sql, &[]).map_err(|e| Failure::Database(format!("cannot replace the rows of {}: {}", ds.name, describe(&e))))?;
    for r in rows {
        let (load, day, rows, digest): (i64, Option<i32>, i64, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        let day = day.map_or(crate::figures::NO_DAY, i64::from);
        merged.taken.push((
            load,
            day,
            Day { rows: rows as u64, digest: digest.parse().map_err(|_| anyhow::anyhow!("digest sum {digest:?}"))? },
        ));
    }
    merge_on(client, ds, schema, stage, merged, unindexed)
}

fn merge_on(client: &mut Client, ds: &Dataset, schema: &str, stage: &str, mut merged: Merged, unindexed: bool) -> Result<Merged> {
    let table = format!("{}.{}", ident(schema), ident(&ds.name));
    let cols: Vec<String> = ds.column_names().map(ident).collect();
    let row = |alias: &str| format!("ROW({})", cols.iter().map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", "));
    let keys: Vec<String> = ds.unique.iter().map(|k| ident(k)).collect();
    let on: Vec<String> = keys.iter().map(|k| format!("t.{k} = m.{k}")).collect();
    let db = |what: &str, e: postgres::Error| Failure::Database(format!("{what}: {}", describe(&e)));
    let clock = std::time::Instant::now();
    exec(
        client,
        "cannot compare the staged rows",
        &format!(
            "ANALYZE {stage};
             DROP TABLE IF EXISTS pg_temp.tier_matched;
             CREATE TEMP TABLE tier_matched ON COMMIT DROP AS
               SELECT m.__row, t.load_id AS old_load, {day} AS old_day, hash_record_extended({t}, {seed}) AS old_hash,
                      {t} IS NOT DISTINCT FROM {m} AS same
               FROM {stage} m JOIN {table} t ON {on};
             ANALYZE pg_temp.tier_matched;",
            day = crate::pg::catalog::day_sql(ds, "t"),
            t = row("t"),
            m = row("m"),
            seed = crate::figures::ROW_HASH_SEED,
            on = on.join(" AND "),
        ),
    )?;
    tracing::info!("merge: compared in {:.2?}", clock.elapsed());
    merged.unchanged_figures = Figures { columns: Figures::columns_of(ds), ..Figures::default() };
    let figures = "SELECT old_load, old_day, same, count(*), sum(old_hash)::text FROM pg_temp.tier_matched GROUP BY 1, 2, 3";
    for r in client.query(figures, &[]).map_err(|e| db("cannot compare the staged rows", e))? {
        let (load, day, same, rows, digest): (i64, Option<i32>, bool, i64, String) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        let day = day.map_or(crate::figures::NO_DAY, i64::from);
        let figures = Day { rows: rows as u64, digest: digest.parse().map_err(|_| anyhow::anyhow!("digest sum {digest:?}"))? };
        if same {
            merged.unchanged += figures.rows;
            let d = merged.unchanged_figures.days.entry(day).or_default();
            d.rows += figures.rows;
            d.digest += figures.digest;
        } else {
            merged.taken.push((load, day, figures));
        }
    }
    let others: Vec<String> = ds.fields.iter().filter(|f| !ds.unique.contains(&f.name)).map(|f| ident(&f.name)).collect();
    if !others.is_empty() {
        let update = format!(
            "UPDATE {table} t SET {}, load_id = m.load_id
             FROM {stage} m JOIN pg_temp.tier_matched x ON x.__row = m.__row AND NOT x.same
             WHERE {}",
            others.iter().map(|c| format!("{c} = m.{c}")).collect::<Vec<_>>().join(", "),
            on.join(" AND "),
        );
        merged.updated = client.execute(&update, &[]).map_err(|e| db(&format!("cannot update {}", ds.name), e))?;
    }
    tracing::info!("merge: updated in {:.2?}", clock.elapsed());
    let order = match unindexed {
        true => String::new(),
        false => format!(" ORDER BY {}", keys.join(", ")),
    };
    let insert = format!(
        "INSERT INTO {table} ({cols}, load_id) SELECT {cols}, load_id FROM {stage} m
         WHERE NOT EXISTS (SELECT FROM pg_temp.tier_matched x WHERE x.__row = m.__row){order}",
        cols = cols.join(", "),
    );
    merged.inserted = client.execute(&insert, &[]).map_err(|e| db(&format!("cannot insert into {}", ds.name), e))?;
    tracing::info!("merge: inserted in {:.2?}", clock.elapsed());
    Ok(merged)
}

//! Declared checks (`checks`) measured in SQL over what a table holds, judged, and kept:
//! every evaluation is appended to `tier_checks`, the history anomaly checks of a whole
//! table compare with.

use anyhow::Result;
use postgres::Client;

use super::connect::{describe, exec, ident, table_exists};
use crate::checks::{is_anomaly, judge, DeclaredCheck, Evaluation, Measure, Metric, Outcome};
use crate::dataset::{Dataset, Kind};
use crate::error::Failure;

/// The history of evaluations.
pub const HISTORY: &str = "tier_checks";
/// The rows at fault of row-level checks that warned or failed, per evaluation, appended.
pub const FAILURES: &str = "tier_check_failures";

/// Which rows checks measure: all of them, those of a day range (both ends included), or
/// those of one load. A `sql` check's query says for itself which rows it reads.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Days as `YYYY-MM-DD` (checked by the command line).
    pub since: Option<String>,
    pub until: Option<String>,
    pub load: Option<i64>,
}

impl Scope {
    /// How a scope other than the whole table is named (`load 7`, `2026-11-01..2026-11-30`).
    pub fn label(&self) -> Option<String> {
        let days = match (&self.since, &self.until) {
            (None, None) => None,
            (since, until) => Some(format!("{}..{}", since.as_deref().unwrap_or(""), until.as_deref().unwrap_or(""))),
        };
        match (self.load, days) {
            (None, days) => days,
            (Some(load), None) => Some(format!("load {load}")),
            (Some(load), Some(days)) => Some(format!("load {load}, {days}")),
        }
    }
}

/// A row's day (as a date) in SQL, `t` naming the row.
fn day_of(ds: &Dataset, day: &str) -> String {
    match ds.field(day).map(|f| f.kind) {
        Some(Kind::Date) => format!("t.{}", ident(day)),
        _ => format!("(t.{} AT TIME ZONE 'UTC')::date", ident(day)),
    }
}

/// The condition on a row (`t`) that keeps it in `scope`.
fn in_scope(ds: &Dataset, scope: &Scope) -> String {
    let mut terms = vec!["TRUE".to_string()];
    if let Some(load) = scope.load {
        terms.push(format!("t.load_id = {load}"));
    }
    if let Some(day) = &ds.day_field {
        for (bound, op) in [(&scope.since, ">="), (&scope.until, "<=")] {
            if let Some(b) = bound {
                terms.push(format!("{} {op} date '{}'", day_of(ds, day), b.replace('\'', "''")));
            }
        }
    }
    terms.join(" AND ")
}

/// The query measuring a check: rows of (group, value), a group per day of the table's
/// first to last day (days with no row included) or one row for the whole table, over the
/// rows in `scope`. A per-day check reads the table once, grouping its rows by day (days
/// with no row get what the aggregate gives no rows: 0 for a count, else NULL).
pub fn measure_sql(ds: &Dataset, check: &DeclaredCheck, schema: &str, scope: &Scope) -> String {
    let s = ident(schema);
    let table = format!("{s}.{}", ident(&ds.name));
    let col = |c: &str| format!("t.{}", ident(c));
    let kept = in_scope(ds, scope);
    let day_column = ds.day_field.as_deref().filter(|_| check.per_day);
    // (group, rows): the whole table's one group, or a day's.
    let (group, by) = match day_column {
        Some(day) => (format!("{} AS day", day_of(ds, day)), " GROUP BY 1"),
        None => ("NULL::date AS day".to_string(), ""),
    };
    // The aggregate over a group's rows, as a double, and what a day with no row has.
    let (aggregate, none) = match &check.measure {
        Measure::Sql(sql) => {
            let sql = sql.replace("{table}", &table);
            return format!("SELECT NULL::text, count(*)::float8 FROM ({sql}) q");
        }
        Measure::Metric(Metric::RejectShare(reason)) => {
            let rejects = format!("{s}.{}", ident(&ds.rejects_table()));
            // A reject has no day: a load's scope only.
            let load = scope.load.map_or("TRUE".to_string(), |l| format!("load_id = {l}"));
            let which = match reason {
                Some(r) => format!("reason = '{}'", r.replace('\'', "''")),
                None => "TRUE".to_string(),
            };
            // The records loaded: a split log's are in its tables, one each.
            let loaded: Vec<String> = match &ds.split {
                Some(split) => split.tables.iter().map(|t| format!("(SELECT count(*) FROM {s}.{} WHERE {load})", ident(&t.name))).collect(),
                None => vec![format!("(SELECT count(*) FROM {table} WHERE {load})")],
            };
            return format!(
                "SELECT NULL::text, (SELECT count(*) FROM {rejects} WHERE {which} AND {load})::float8 / \
                 nullif((SELECT count(*) FROM {rejects} WHERE {load}) + {}, 0)",
                loaded.join(" + ")
            );
        }
        Measure::Metric(Metric::DuplicateShare(cols)) => {
            // Rows repeating others: the rows less their distinct values, counted by hashing
            // (groups of equal values, NULLs equal, as DISTINCT has them) rather than a
            // sort per group.
            let cols: Vec<String> = cols.iter().map(|c| col(c)).collect();
            let distinct = format!("SELECT {group}, count(*) AS n FROM {table} t WHERE {kept} GROUP BY 1, {}", cols.join(", "));
            // (Without a day, no GROUP BY: an empty table still gives its one row.)
            let (day, by_day) = match day_column {
                Some(_) => ("day", " GROUP BY day"),
                None => ("NULL::date AS day", ""),
            };
            let per = format!("SELECT {day}, (1 - count(*)::float8 / nullif(sum(n), 0))::float8 AS value FROM ({distinct}) g{by_day}");
            return grouped(&per, day_column.is_some(), "NULL");
        }
        Measure::Metric(m) => {
            let agg = |call: String| format!("({call})::float8");
            match m {
                Metric::RowCount => (agg("count(*)".into()), "0"),
                Metric::MissingShare(c) => (agg(format!("avg(({} IS NULL)::int)", col(c))), "NULL"),
                Metric::Distinct(c) => (agg(format!("count(DISTINCT {})", col(c))), "0"),
                Metric::Min(c) => (agg(format!("min({})", col(c))), "NULL"),
                Metric::Max(c) => (agg(format!("max({})", col(c))), "NULL"),
                Metric::Avg(c) => (agg(format!("avg({})", col(c))), "NULL"),
                Metric::Sum(c) => (agg(format!("sum({})", col(c))), "NULL"),
                Metric::Freshness(c) => (format!("extract(epoch FROM now() - max({})::timestamptz)::float8", col(c)), "NULL"),
                Metric::UnmatchedShare { column, table: other, other: other_column } => (
                    agg(format!(
                        "avg(({c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {s}.{} o WHERE o.{} = {c}))::int)",
                        ident(other),
                        ident(other_column),
                        c = col(column)
                    )),
                    "NULL",
                ),
                Metric::RejectShare(_) | Metric::DuplicateShare(_) => unreachable!("measured above"),
            }
        }
    };
    let per = format!("SELECT {group}, {aggregate} AS value FROM {table} t WHERE {kept}{by}");
    grouped(&per, day_column.is_some(), none)
}

/// The (group, value) rows of `per`, a query of (day, value) rows: one per day from its
/// first to its last (a day it lacks has `none`), or its one row (`per_day` false; a whole
/// table's aggregate always gives one).
fn grouped(per: &str, per_day: bool, none: &str) -> String {
    match per_day {
        false => format!("SELECT NULL::text, value FROM ({per}) g"),
        true => format!(
            "WITH per AS ({per}),
                  days AS (SELECT generate_series(min(day), max(day), interval '1 day')::date AS day FROM per)
             SELECT to_char(days.day, 'YYYY-MM-DD'), coalesce(per.value, {none}) FROM days LEFT JOIN per ON per.day = days.day
             ORDER BY days.day"
        ),
    }
}

/// Every check of `ds`, measured over what its table holds now and judged (anomalies
/// against the days before, or the whole table's history). The contract's own SQL runs in
/// a read-only transaction, where it cannot change anything.
pub fn evaluate(client: &mut Client, ds: &Dataset, schema: &str, scope: &Scope) -> Result<Vec<Evaluation>> {
    // A split log itself has no table: its checks measure its rejects table.
    let table = if ds.split.is_some() { ds.rejects_table() } else { ds.name.clone() };
    if !table_exists(client, schema, &table)? {
        return Err(Failure::Input(format!("{}: no such table in schema {schema} (load it first)", table)).into());
    }
    let mut out = Vec::new();
    for check in &ds.checks {
        let mut tx = client.build_transaction().read_only(true).start().map_err(db)?;
        let rows = tx.query(&measure_sql(ds, check, schema, scope), &[]).map_err(|e| check_error(ds, check, e))?;
        tx.commit().map_err(db)?;
        let history = history_of(client, ds, schema, check)?;
        let mut judged = judge_all(ds, check, &measured(&rows), &history);
        for e in judged.iter_mut().filter(|e| e.outcome != Outcome::Pass) {
            if let Some(sql) = failing_rows_sql(ds, check, schema, e.group.as_deref(), scope) {
                let mut tx = client.build_transaction().read_only(true).start().map_err(db)?;
                let rows = tx.query(&sql, &[]).map_err(|err| check_error(ds, check, err))?;
                tx.commit().map_err(db)?;
                e.failing_rows = rows.iter().map(|r| r.get(0)).collect();
            }
        }
        out.extend(judged);
    }
    Ok(out)
}

/// The query for a row-level check's rows at fault (in a day's group, for a per-day one),
/// each as JSON text: the table's `unique` columns, else the whole row.
fn failing_rows_sql(ds: &Dataset, check: &DeclaredCheck, schema: &str, day: Option<&str>, scope: &Scope) -> Option<String> {
    let s = ident(schema);
    let table = format!("{s}.{}", ident(&ds.name));
    let limit = crate::checks::FAILING_ROWS;
    let col = |c: &str| format!("t.{}", ident(c));
    let key = match ds.unique.is_empty() {
        true => "to_jsonb(t)::text".to_string(),
        false => {
            let pairs: Vec<String> = ds.unique.iter().map(|c| format!("'{}', {}", c.replace('\'', "''"), col(c))).collect();
            format!("jsonb_build_object({})::text", pairs.join(", "))
        }
    };
    let at_fault = match &check.measure {
        Measure::Sql(sql) => return Some(format!("SELECT to_jsonb(q)::text FROM ({}) q LIMIT {limit}", sql.replace("{table}", &table))),
        Measure::Metric(Metric::MissingShare(c)) => format!("{} IS NULL", col(c)),
        Measure::Metric(Metric::UnmatchedShare { column, table: other, other: other_column }) => format!(
            "{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {s}.{} o WHERE o.{} = {c})",
            ident(other),
            ident(other_column),
            c = col(column)
        ),
        _ => return None,
    };
    let in_day = match (day, &ds.day_field) {
        (Some(d), Some(day_column)) => {
            let day_of = match ds.field(day_column).map(|f| f.kind) {
                Some(Kind::Date) => col(day_column),
                _ => format!("({} AT TIME ZONE 'UTC')::date", col(day_column)),
            };
            format!(" AND {day_of} = '{}'", d.replace('\'', "''"))
        }
        _ => String::new(),
    };
    Some(format!("SELECT {key} FROM {table} t WHERE {at_fault}{in_day} AND {} LIMIT {limit}", in_scope(ds, scope)))
}

/// A load's gate, in its transaction (`load` is the load's id): every check over the table
/// as the load leaves it, a per-day check on the days the load's rows are on only (a bad
/// day of long ago does not stop every load after it): `loaded_days` where the load knows
/// them (`YYYY-MM-DD`), else the server finds them (a scan of the table for the load's id).
/// The contract's SQL runs under a savepoint that is rolled back, so it cannot change what
/// the load commits.
pub fn evaluate_gate(
    client: &mut Client,
    ds: &Dataset,
    schema: &str,
    load: i64,
    loaded_days: Option<Vec<String>>,
) -> Result<Vec<Evaluation>> {
    // A per-day check without an anomaly judges each of the load's days by that day's rows
    // alone: measured over the days from the load's first to its last, it gives them the
    // same values (the table is still read; its other days' rows are not aggregated). One
    // that compares with the days before reads every day. Only days the load knows itself,
    // all of the years 1 to 9999, whose text orders as the days do.
    let span = loaded_days.as_ref().filter(|days| days.iter().all(|d| is_plain_day(d))).and_then(|days| {
        let (first, last) = (days.iter().min()?, days.iter().max()?);
        Some(Scope { since: Some(first.clone()), until: Some(last.clone()), load: None })
    });
    let days: Vec<String> = match &ds.day_field {
        Some(_) if !ds.checks.iter().any(|c| c.per_day) => Vec::new(),
        Some(_) if loaded_days.is_some() => loaded_days.unwrap_or_default(),
        Some(day) => {
            let day_of = match ds.field(day).map(|f| f.kind) {
                Some(Kind::Date) => ident(day),
                _ => format!("({} AT TIME ZONE 'UTC')::date", ident(day)),
            };
            let sql =
                format!("SELECT DISTINCT to_char({day_of}, 'YYYY-MM-DD') FROM {}.{} WHERE load_id = $1", ident(schema), ident(&ds.name));
            client.query(&sql, &[&load]).map_err(db)?.iter().filter_map(|r| r.get::<_, Option<String>>(0)).collect()
        }
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for check in &ds.checks {
        exec(client, "a check's savepoint", "SAVEPOINT tier_check")?;
        let scope = span.as_ref().filter(|_| check.per_day && check.anomaly.is_none()).cloned().unwrap_or_default();
        let rows = client.query(&measure_sql(ds, check, schema, &scope), &[]);
        exec(client, "a check's savepoint", "ROLLBACK TO SAVEPOINT tier_check")?;
        let rows = rows.map_err(|e| check_error(ds, check, e))?;
        let history = history_of(client, ds, schema, check)?;
        let judged = judge_all(ds, check, &measured(&rows), &history);
        for mut e in judged.into_iter().filter(|e| e.group.as_ref().is_none_or(|day| days.contains(day))) {
            if let Some(sql) =
                failing_rows_sql(ds, check, schema, e.group.as_deref(), &Scope::default()).filter(|_| e.outcome != Outcome::Pass)
            {
                exec(client, "a check's savepoint", "SAVEPOINT tier_check")?;
                let rows = client.query(&sql, &[]);
                exec(client, "a check's savepoint", "ROLLBACK TO SAVEPOINT tier_check")?;
                e.failing_rows = rows.map_err(|err| check_error(ds, check, err))?.iter().map(|r| r.get(0)).collect();
            }
            out.push(e);
        }
    }
    Ok(out)
}

/// A day as `YYYY-MM-DD` of the years 1 to 9999.
fn is_plain_day(day: &str) -> bool {
    let b = day.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
        && &day[..4] != "0000"
}

fn check_error(ds: &Dataset, check: &DeclaredCheck, e: postgres::Error) -> anyhow::Error {
    Failure::Input(format!("{}: check {:?}: {}", ds.source, check.name, describe(&e))).into()
}

/// A measuring query's (group, value) rows.
fn measured(rows: &[postgres::Row]) -> Vec<(Option<String>, Option<f64>)> {
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// The past a whole-table anomaly check compares with (none for others).
fn history_of(client: &mut Client, ds: &Dataset, schema: &str, check: &DeclaredCheck) -> Result<Vec<f64>> {
    match (check.anomaly, check.per_day) {
        (Some(a), false) => past_values(client, schema, &ds.name, &check.name, a.window),
        _ => Ok(Vec::new()),
    }
}

/// Each measured group judged by the thresholds and, for an anomaly check, its past: the
/// days before it (per day), or `history` (the whole table's earlier values).
fn judge_all(ds: &Dataset, check: &DeclaredCheck, measured: &[(Option<String>, Option<f64>)], history: &[f64]) -> Vec<Evaluation> {
    let mut out = Vec::new();
    for (i, (group, value)) in measured.iter().enumerate() {
        let mut outcome = value.map_or(Outcome::Pass, |v| judge(check, v));
        let mut detail = crossed(check, *value);
        if let (Some(a), Some(v)) = (check.anomaly, value) {
            let past: Vec<f64> = match check.per_day {
                true => measured[..i].iter().rev().filter_map(|(_, v)| *v).take(a.window).collect(),
                false => history.to_vec(),
            };
            if is_anomaly(*v, &past, a.sensitivity) {
                outcome = outcome.max(Outcome::Warn);
                let mut sorted = past.clone();
                sorted.sort_by(|x, y| x.total_cmp(y));
                detail = format!("anomaly: {v} against a median of {} over the {} values before", sorted[sorted.len() / 2], past.len());
            }
        }
        out.push(Evaluation {
            dataset: ds.name.clone(),
            check: check.name.clone(),
            group: group.clone(),
            value: *value,
            warn: check.warn.as_ref().map(|t| t.text.clone()),
            fail: check.fail.as_ref().map(|t| t.text.clone()),
            outcome,
            detail,
            failing_rows: Vec::new(),
        });
    }
    out
}

/// The threshold a value crosses, said.
fn crossed(check: &DeclaredCheck, value: Option<f64>) -> String {
    let Some(v) = value else { return String::new() };
    for (what, t) in [("fail", &check.fail), ("warn", &check.warn)] {
        if let Some(t) = t.as_ref().filter(|t| t.crossed(v)) {
            return format!("{v} is {what} {}", t.text);
        }
    }
    String::new()
}

/// The last `n` whole-table values of a check, newest first.
fn past_values(client: &mut Client, schema: &str, dataset: &str, check: &str, n: usize) -> Result<Vec<f64>> {
    if !table_exists(client, schema, HISTORY)? {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT value FROM {}.{HISTORY} WHERE dataset = $1 AND check_name = $2 AND grp IS NULL AND value IS NOT NULL ORDER BY id DESC LIMIT $3",
        ident(schema)
    );
    Ok(client.query(&sql, &[&dataset, &check, &(n as i64)]).map_err(db)?.iter().map(|r| r.get(0)).collect())
}

/// Appends evaluations to the history (made if missing), with the load they judged, if any.
pub fn record(client: &mut Client, schema: &str, evaluations: &[Evaluation], load: Option<i64>) -> Result<()> {
    let s = ident(schema);
    if !table_exists(client, schema, HISTORY)? {
        // Made by the first evaluation of a schema's checks, under the lock tier's other DDL
        // takes (held to the commit in a load's gate): two loads at once cannot both make it.
        exec(client, "cannot keep the checks' history", "SELECT pg_advisory_xact_lock(hashtext('tier:ddl'))")?;
    }
    exec(
        client,
        "cannot keep the checks' history",
        &format!(
            "CREATE TABLE IF NOT EXISTS {s}.{HISTORY} (
               id bigserial PRIMARY KEY,
               checked_at timestamptz NOT NULL DEFAULT now(),
               dataset text NOT NULL,
               check_name text NOT NULL,
               load_id bigint,
               grp text,
               value double precision,
               warn text,
               fail text,
               outcome text NOT NULL,
               detail text
             )"
        ),
    )?;
    exec(
        client,
        "cannot keep the checks' history",
        &format!(
            "CREATE TABLE IF NOT EXISTS {s}.{FAILURES} (
               evaluation_id bigint NOT NULL,
               dataset text NOT NULL,
               check_name text NOT NULL,
               grp text,
               row_at_fault jsonb NOT NULL
             )"
        ),
    )?;
    let sql = format!(
        "INSERT INTO {s}.{HISTORY} (dataset, check_name, load_id, grp, value, warn, fail, outcome, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id"
    );
    let insert = client.prepare(&sql).map_err(db)?;
    let at_fault = client
        .prepare(&format!(
            "INSERT INTO {s}.{FAILURES} (evaluation_id, dataset, check_name, grp, row_at_fault) VALUES ($1, $2, $3, $4, $5::text::jsonb)"
        ))
        .map_err(db)?;
    for e in evaluations {
        let id: i64 = client
            .query_one(&insert, &[&e.dataset, &e.check, &load, &e.group, &e.value, &e.warn, &e.fail, &e.outcome.name(), &e.detail])
            .map_err(db)?
            .get(0);
        for row in &e.failing_rows {
            client.execute(&at_fault, &[&id, &e.dataset, &e.check, &e.group, row]).map_err(db)?;
        }
    }
    Ok(())
}

fn db(e: postgres::Error) -> anyhow::Error {
    Failure::Database(describe(&e)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only days whose text orders as the days do bound a gate's measure.
    #[test]
    fn plain_days_are_four_digit_years_of_our_era() {
        assert!(is_plain_day("2026-11-03") && is_plain_day("0001-01-01") && is_plain_day("9999-12-31"));
        for odd in ["0000-01-01", "-001-01-01", "10000-01-01", "2026-1-03", "2026/11/03", ""] {
            assert!(!is_plain_day(odd), "{odd}");
        }
    }
}

//! The report's checks section: every declared check with where it stands now (the latest
//! evaluation of each day, or of the whole table), and its values over time drawn with its
//! thresholds, from the history loads and `tier check` keep (`pg::checks::HISTORY`).

use polars::prelude::*;

use crate::checks::{DeclaredCheck, Outcome};
use crate::dataset::Dataset;
use crate::pg::checks::HISTORY;
use crate::pg::connect::{self, ident, text_literal as text};
use crate::pg::read;
use crate::render::chart::{history_svg, History};
use crate::render::report::{table_data, CheckChart, ChecksSection, Section};

/// The most days (or whole-table evaluations) a check's chart draws, the latest ones.
const DRAWN: usize = 366;
/// A day's group in the history (others name a scope: `load 7`, a range of days).
const DAY_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";

/// The section for these datasets' checks (a split log's tables' too), or none when none
/// declares any. `history` says whether the history table exists yet.
pub fn checks_section(datasets: &[&'static Dataset], target: &connect::Target, schema: &str, history: bool) -> Option<ChecksSection> {
    let checked: Vec<(&Dataset, &DeclaredCheck)> =
        datasets.iter().flat_map(|d| d.checked()).flat_map(|t| t.checks.iter().map(move |c| (t, c))).collect();
    if checked.is_empty() {
        return None;
    }
    let sql = summary_sql(&checked, schema, history);
    let summary = match read::query_frame(target, &sql, true, schema) {
        Ok(df) => Section { table: Some(table_data(&df, checked.len()).0), error: None, sql: Some(sql) },
        Err(e) => Section { table: None, error: Some(format!("{e:#}")), sql: Some(sql) },
    };
    let mut charts = Vec::new();
    let mut errors = Vec::new();
    if history {
        let mut tables: Vec<&Dataset> = checked.iter().map(|(t, _)| *t).collect();
        tables.dedup_by(|a, b| a.name == b.name);
        for table in tables {
            match read::query_frame(target, &history_sql(&table.name, schema), true, schema) {
                Ok(df) => charts.extend(table.checks.iter().filter_map(|c| chart(table, c, &df))),
                Err(e) => errors.push(format!("{}: {e:#}", table.name)),
            }
        }
    }
    let note = match history {
        false => Some("No check has been evaluated yet: each load runs its table's checks, and `tier check` runs them all.".to_string()),
        true if !errors.is_empty() => Some(format!("history not read: {}", errors.join("; "))),
        true => None,
    };
    Some(ChecksSection { summary, charts, note })
}

/// Per declared check: what it measures, its thresholds, how often it was evaluated, and
/// where it stands now (the latest evaluation of each day, or of the whole table).
fn summary_sql(checked: &[(&Dataset, &DeclaredCheck)], schema: &str, history: bool) -> String {
    let declared: Vec<String> = checked
        .iter()
        .enumerate()
        .map(|(i, (t, c))| {
            format!(
                "({i}, {}, {}, {}, {}, {})",
                text(&t.name),
                text(&c.name),
                text(&c.measure_text()),
                c.warn.as_ref().map_or("NULL".into(), |w| text(&w.text)),
                c.fail.as_ref().map_or("NULL".into(), |f| text(&f.text))
            )
        })
        .collect();
    let declared = format!("declared(position, dataset, check_name, measure, warn, fail) AS (VALUES {})", declared.join(", "));
    if !history {
        return format!(
            "WITH {declared} SELECT dataset AS \"table\", check_name AS \"check\", measure, warn::text AS warn, fail::text AS fail, \
             'not evaluated' AS now FROM declared ORDER BY position"
        );
    }
    let h = format!("{}.{HISTORY}", ident(schema));
    format!(
        "WITH {declared},
         latest AS (SELECT DISTINCT ON (dataset, check_name, grp) dataset, check_name, outcome, checked_at FROM {h}
                    WHERE grp IS NULL OR grp ~ '{DAY_PATTERN}' ORDER BY dataset, check_name, grp, id DESC),
         standing AS (SELECT dataset, check_name, count(*) FILTER (WHERE outcome = 'pass') AS pass,
                      count(*) FILTER (WHERE outcome = 'warn') AS warn, count(*) FILTER (WHERE outcome = 'fail') AS fail,
                      max(checked_at) AS last FROM latest GROUP BY 1, 2),
         counts AS (SELECT dataset, check_name, count(*) AS evaluations FROM {h} GROUP BY 1, 2)
         SELECT d.dataset AS \"table\", d.check_name AS \"check\", d.measure, d.warn::text AS warn, d.fail::text AS fail,
                CASE WHEN s.fail > 0 THEN 'fail' WHEN s.warn > 0 THEN 'warn' WHEN s.pass > 0 THEN 'pass' ELSE 'not evaluated' END AS now,
                s.pass::bigint AS passing, s.warn::bigint AS warning, s.fail::bigint AS failing,
                coalesce(c.evaluations, 0)::bigint AS evaluations,
                to_char(s.last AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS last_evaluated_utc
         FROM declared d LEFT JOIN standing s USING (dataset, check_name) LEFT JOIN counts c USING (dataset, check_name)
         ORDER BY d.position"
    )
}

/// A table's checks over time: the latest value of each day (per-day checks), and each
/// evaluation of the whole table, the latest `DRAWN` of each.
fn history_sql(table: &str, schema: &str) -> String {
    let h = format!("{}.{HISTORY}", ident(schema));
    let dataset = text(table);
    format!(
        "SELECT check_name, label, value, outcome FROM (
           SELECT check_name, grp AS label, value, outcome, grp AS at, 0::bigint AS id,
                  row_number() OVER (PARTITION BY check_name ORDER BY grp DESC) AS r
           FROM (SELECT DISTINCT ON (check_name, grp) check_name, grp, value, outcome FROM {h}
                 WHERE dataset = {dataset} AND grp ~ '{DAY_PATTERN}' ORDER BY check_name, grp, id DESC) d
           UNION ALL
           SELECT check_name, to_char(checked_at AT TIME ZONE 'UTC', 'MM-DD HH24:MI'), value, outcome, '', id,
                  row_number() OVER (PARTITION BY check_name ORDER BY id DESC)
           FROM {h} WHERE dataset = {dataset} AND grp IS NULL
         ) x WHERE r <= {DRAWN} ORDER BY check_name, at, id"
    )
}

/// One check's chart from its table's history, if it has any value.
fn chart(table: &Dataset, check: &DeclaredCheck, df: &DataFrame) -> Option<CheckChart> {
    let column = |name: &str| df.column(name).ok().and_then(|c| c.as_materialized_series().cast(&DataType::String).ok());
    let (names, labels, outcomes) = (column("check_name")?, column("label")?, column("outcome")?);
    let values = df.column("value").ok()?.cast(&DataType::Float64).ok()?;
    let (names, labels, outcomes, values) = (names.str().ok()?, labels.str().ok()?, outcomes.str().ok()?, values.f64().ok()?);
    let mut history = History { check: &check.name, labels: Vec::new(), values: Vec::new(), outcomes: Vec::new(), thresholds: Vec::new() };
    for i in (0..df.height()).filter(|i| names.get(*i) == Some(check.name.as_str())) {
        history.labels.push(labels.get(i).unwrap_or_default().to_string());
        history.values.push(values.get(i));
        history.outcomes.push(match outcomes.get(i) {
            Some("fail") => Outcome::Fail,
            Some("warn") => Outcome::Warn,
            _ => Outcome::Pass,
        });
    }
    if history.values.iter().all(Option::is_none) {
        return None;
    }
    for (what, t) in [("warn", &check.warn), ("fail", &check.fail)] {
        if let Some(t) = t {
            history.thresholds.push((format!("{what} {}", t.text), t.value));
        }
    }
    match history_svg(&history) {
        Ok(svg) => Some(CheckChart { table: table.name.clone(), check: check.name.clone(), measure: check.measure_text(), svg }),
        Err(e) => {
            tracing::warn!("{}: check {:?}: no chart: {e:#}", table.name, check.name);
            None
        }
    }
}

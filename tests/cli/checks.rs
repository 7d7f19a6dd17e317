//! Declared checks (`[[check]]`): each metric against the same figure computed in SQL by
//! hand, an anomaly found on a planted drop and not on normal days, the history kept, exit
//! codes for fail and warn.

use crate::common::*;

const SALES: &str = r#"name = "sales"
day = "at"

[[column]]
name = "id"
type = "bigint"
required = true

[[column]]
name = "at"
type = "timestamp"

[[column]]
name = "device"
type = "text"

[[column]]
name = "code"
type = "text"

[[column]]
name = "amount"
type = "integer"

[[column]]
name = "city"
type = "text"

[[check]]
name = "rows per day"
metric = "row_count"
per = "day"
fail = "< 5"
anomaly = { window = 28, sensitivity = 3 }

[[check]]
name = "device missing"
metric = "missing_share(device)"
warn = "> 0.05"
fail = "> 0.5"

[[check]]
name = "codes repeated"
metric = "duplicate_share(code, city)"
fail = "> 0.999"

[[check]]
name = "codes"
metric = "distinct(code)"
fail = "< 2"

[[check]]
name = "smallest"
metric = "min(amount)"
fail = "< 0"

[[check]]
name = "largest"
metric = "max(amount)"
fail = "> 1000"

[[check]]
name = "mean"
metric = "avg(amount)"
per = "day"
fail = "> 1000"

[[check]]
name = "total"
metric = "sum(amount)"
fail = "< 0"

[[check]]
name = "rejected"
metric = "reject_share"
fail = "> 0.5"

[[check]]
name = "bad numbers"
metric = "reject_share(bad_number)"
warn = "> 0"

[[check]]
name = "fresh"
metric = "freshness(at)"
warn = "> 3650d"

[[check]]
name = "cities known"
metric = "unmatched_share(city)"
references = "cities(city)"
fail = "> 0.5"

[[check]]
name = "no amount over 98"
sql = "select * from {table} where amount > 98"
fail = "> 1000"
"#;

const CITIES: &str = "name = \"cities\"\n[[column]]\nname = \"city\"\ntype = \"text\"\n";

/// 30 days of sales, 100 a day but 20 on the last (a planted drop), some without a device,
/// some in a city the cities table lacks, and 5 with an amount that is not a number.
fn sales() -> String {
    let mut out = String::new();
    let mut id = 0;
    for day in 1..=30 {
        let n = if day == 30 { 20 } else { 100 };
        for i in 0..n {
            id += 1;
            let device = if id % 9 == 0 { "null".to_string() } else { format!("\"d{}\"", id % 7) };
            let city = ["Berlin", "Paris", "Nowhere"][id % 3];
            out.push_str(&format!(
                "{{\"id\": {id}, \"at\": \"2026-11-{day:02} {:02}:{:02}:00\", \"device\": {device}, \"code\": \"c{}\", \"amount\": {}, \"city\": \"{city}\"}}\n",
                i / 60,
                i % 60,
                id % 50,
                id % 100
            ));
        }
    }
    for i in 0..5 {
        out.push_str(&format!("{{\"id\": {}, \"at\": \"2026-11-02 01:00:00\", \"amount\": \"x{i}\"}}\n", 10_000 + i));
    }
    out
}

fn setup(name: &str) -> (Env, std::path::PathBuf) {
    let env = Env::new(name);
    let dir = contract(&env, "sales", SALES);
    contract(&env, "cities", CITIES);
    env.write("sales.json", sales());
    env.write("cities.json", "{\"city\": \"Berlin\"}\n{\"city\": \"Paris\"}\n");
    let (code, _, err) = run(env.tier(&["--datasets", dir.to_str().unwrap(), "load"]));
    assert_eq!(code, 0, "{err}");
    (env, dir)
}

fn check(env: &Env, dir: &std::path::Path, more: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let mut args = vec!["--datasets", dir.to_str().unwrap(), "check", "--format", "json"];
    args.extend_from_slice(more);
    let (code, out, err) = run(env.tier(&args));
    (code, serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}\n{err}")), err)
}

fn one_value(env: &Env, sql: &str) -> f64 {
    let sql = sql.replace("{s}", &env.schema);
    client().query_one(&format!("SELECT ({sql})::float8"), &[]).unwrap().get(0)
}

#[test]
fn each_metric_is_the_figure_sql_computes_and_an_anomaly_is_the_planted_drop() {
    let (env, dir) = setup("checks_metrics");
    let (code, evaluations, err) = check(&env, &dir, &[]);
    assert_eq!(code, 0, "{evaluations:?}\n{err}");
    let whole = |name: &str| -> f64 {
        let e = evaluations.iter().find(|e| e["check"] == name && e["group"].is_null()).unwrap_or_else(|| panic!("{name}"));
        e["value"].as_f64().unwrap()
    };
    let by_hand = [
        ("device missing", "SELECT avg((device IS NULL)::int) FROM {s}.sales"),
        ("codes repeated", "SELECT 1 - count(DISTINCT (code, city))::float8 / count(*) FROM {s}.sales"),
        ("codes", "SELECT count(DISTINCT code) FROM {s}.sales"),
        ("smallest", "SELECT min(amount) FROM {s}.sales"),
        ("largest", "SELECT max(amount) FROM {s}.sales"),
        ("total", "SELECT sum(amount) FROM {s}.sales"),
        ("rejected", "SELECT (SELECT count(*) FROM {s}.sales_rejects)::float8 / ((SELECT count(*) FROM {s}.sales_rejects) + (SELECT count(*) FROM {s}.sales))"),
        ("bad numbers", "SELECT (SELECT count(*) FROM {s}.sales_rejects WHERE reason = 'bad_number')::float8 / ((SELECT count(*) FROM {s}.sales_rejects) + (SELECT count(*) FROM {s}.sales))"),
        ("cities known", "SELECT avg((city IS NOT NULL AND city NOT IN (SELECT city FROM {s}.cities))::int) FROM {s}.sales"),
        ("no amount over 98", "SELECT count(*) FROM {s}.sales WHERE amount > 98"),
    ];
    for (name, sql) in by_hand {
        let (measured, expected) = (whole(name), one_value(&env, sql));
        assert!((measured - expected).abs() <= 1e-9 * expected.abs().max(1.0), "{name}: {measured} against {expected} by hand");
    }
    let age = one_value(&env, "SELECT extract(epoch FROM now() - max(at)) FROM {s}.sales");
    assert!((whole("fresh") - age).abs() < 60.0, "freshness {} against {age}", whole("fresh"));
    // Per day: every day, its rows and mean as SQL has them.
    let days: Vec<&serde_json::Value> = evaluations.iter().filter(|e| e["check"] == "rows per day").collect();
    assert_eq!(days.len(), 30);
    for day in &days {
        let d = day["group"].as_str().unwrap();
        let n = one_value(&env, &format!("SELECT count(*) FROM {{s}}.sales WHERE (at AT TIME ZONE 'UTC')::date = '{d}'"));
        assert_eq!(day["value"].as_f64().unwrap(), n, "{d}");
        let mean = evaluations.iter().find(|e| e["check"] == "mean" && e["group"] == d).unwrap()["value"].as_f64().unwrap();
        let expected = one_value(&env, &format!("SELECT avg(amount) FROM {{s}}.sales WHERE (at AT TIME ZONE 'UTC')::date = '{d}'"));
        assert!((mean - expected).abs() < 1e-9, "{d}: mean {mean} against {expected}");
    }
    // The drop on the last day is an anomaly (a warning); no other day is.
    let flagged: Vec<&str> = days.iter().filter(|d| d["outcome"] != "pass").map(|d| d["group"].as_str().unwrap()).collect();
    assert_eq!(flagged, ["2026-11-30"], "{days:?}");
    assert!(days[29]["detail"].as_str().unwrap().starts_with("anomaly"), "{:?}", days[29]);
    // Warnings: the missing devices (11%) and the bad numbers; exit 0, or 1 with --strict.
    let warned: Vec<&str> = evaluations.iter().filter(|e| e["outcome"] == "warn").map(|e| e["check"].as_str().unwrap()).collect();
    assert_eq!(warned, ["rows per day", "device missing", "bad numbers"]);
    // The rows at fault of a row-level check: up to 100, the rows missing a device.
    let missing = evaluations.iter().find(|e| e["check"] == "device missing").unwrap();
    let rows = missing["failing_rows"].as_array().unwrap();
    assert_eq!(rows.len(), 100);
    assert!(rows.iter().all(|r| serde_json::from_str::<serde_json::Value>(r.as_str().unwrap()).unwrap()["device"].is_null()), "{rows:?}");
    let (code, _, _) = check(&env, &dir, &["--strict"]);
    assert_eq!(code, 1);
    // A day range: the per-day checks on those days, the others over their rows only.
    let (code, ranged, err) = check(&env, &dir, &["--since", "2026-11-28", "--until", "2026-11-30"]);
    assert_eq!(code, 0, "{err}");
    let days: Vec<&str> = ranged.iter().filter(|e| e["check"] == "rows per day").map(|e| e["group"].as_str().unwrap()).collect();
    assert_eq!(days, ["2026-11-28", "2026-11-29", "2026-11-30"]);
    let missing = ranged.iter().find(|e| e["check"] == "device missing").unwrap();
    assert_eq!(missing["group"], "2026-11-28..2026-11-30");
    let expected = one_value(
        &env,
        "SELECT avg((device IS NULL)::int) FROM {s}.sales WHERE (at AT TIME ZONE 'UTC')::date BETWEEN '2026-11-28' AND '2026-11-30'",
    );
    assert!((missing["value"].as_f64().unwrap() - expected).abs() < 1e-12, "{missing}");
    // Kept per evaluation, appended, never replaced (the load's gate's, then three runs').
    let kept = one_value(
        &env,
        "SELECT count(*) FROM {s}.tier_check_failures WHERE check_name = 'device missing' AND row_at_fault->>'device' IS NULL",
    );
    let in_range = one_value(&env, "SELECT count(*) FROM {s}.sales WHERE device IS NULL AND (at AT TIME ZONE 'UTC')::date >= '2026-11-28'");
    assert_eq!(kept, 300.0 + in_range.min(100.0));
    // Every evaluation is kept, run after run.
    let kept = one_value(&env, "SELECT count(*) FROM {s}.tier_checks WHERE load_id IS NULL");
    assert_eq!(kept as usize, 2 * evaluations.len() + ranged.len());
    // And the load's own gate: each whole-table check once, each per-day check on its days.
    let gate = one_value(
        &env,
        "SELECT count(*) FROM {s}.tier_checks WHERE load_id = (SELECT max(id) FROM {s}.tier_loads WHERE table_name = 'sales')",
    );
    assert_eq!(gate as usize, 11 + 2 * 30);
}

/// A per-day check reads each day's rows once: a day with no row between the first and the
/// last has a count of 0 and no mean or share, and each day's figures are SQL's by hand; a
/// range with no row gives each whole-table check one row without a value.
#[test]
fn per_day_checks_give_empty_days_their_value_and_agree_with_sql() {
    let env = Env::new("checks_days");
    let contract_text = r#"name = "visits"
day = "at"

[[column]]
name = "at"
type = "timestamp"

[[column]]
name = "page"
type = "text"

[[column]]
name = "ms"
type = "integer"

[[check]]
name = "rows"
metric = "row_count"
per = "day"
fail = "< -1"

[[check]]
name = "mean"
metric = "avg(ms)"
per = "day"
fail = "< -1"

[[check]]
name = "repeats"
metric = "duplicate_share(page, ms)"
per = "day"
fail = "< -1"

[[check]]
name = "pages"
metric = "distinct(page)"
per = "day"
fail = "< -1"

[[check]]
name = "repeats overall"
metric = "duplicate_share(page, ms)"
fail = "< -1"
"#;
    let dir = contract(&env, "visits", contract_text);
    let mut rows = String::new();
    // Days 1, 2 and 4 (none on the 3rd), pages and times repeating, a NULL among them.
    for (day, n) in [(1, 40), (2, 25), (4, 30)] {
        for i in 0..n {
            let page = if i % 11 == 0 { "null".to_string() } else { format!("\"p{}\"", i % 6) };
            rows.push_str(&format!("{{\"at\": \"2026-11-{day:02} 10:{:02}:00\", \"page\": {page}, \"ms\": {}}}\n", i % 60, i % 4));
        }
    }
    env.write("visits.json", rows);
    let (code, _, err) = run(env.tier(&["--datasets", dir.to_str().unwrap(), "load", "visits"]));
    assert_eq!(code, 0, "{err}");
    let (code, evaluations, err) = check(&env, &dir, &[]);
    assert_eq!(code, 0, "{evaluations:?}\n{err}");
    let value = |name: &str, day: &str| -> Option<f64> {
        evaluations.iter().find(|e| e["check"] == name && e["group"] == day).unwrap_or_else(|| panic!("{name} {day}"))["value"].as_f64()
    };
    for day in ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"] {
        let of_day = format!("FROM {{s}}.visits WHERE (at AT TIME ZONE 'UTC')::date = '{day}'");
        assert_eq!(value("rows", day), Some(one_value(&env, &format!("SELECT count(*) {of_day}"))), "{day}");
        let by_hand = |sql: String| client().query_one(&sql.replace("{s}", &env.schema), &[]).unwrap().get::<_, Option<f64>>(0);
        // (The values as printed: to 1e-12.)
        let near = |a: Option<f64>, b: Option<f64>| a.zip(b).map_or(a.is_none() && b.is_none(), |(a, b)| (a - b).abs() < 1e-12);
        let mean = by_hand(format!("SELECT avg(ms)::float8 {of_day}"));
        assert!(near(value("mean", day), mean), "{day}: {:?} against {mean:?}", value("mean", day));
        let repeats = by_hand(format!("SELECT (1 - count(DISTINCT (page, ms))::float8 / nullif(count(*), 0))::float8 {of_day}"));
        assert!(near(value("repeats", day), repeats), "{day}: {:?} against {repeats:?}", value("repeats", day));
        assert_eq!(value("pages", day), Some(one_value(&env, &format!("SELECT count(DISTINCT page) {of_day}"))), "{day}");
    }
    let gap = "2026-11-03";
    assert_eq!((value("rows", gap), value("mean", gap), value("repeats", gap), value("pages", gap)), (Some(0.0), None, None, Some(0.0)));
    let overall = evaluations.iter().find(|e| e["check"] == "repeats overall").unwrap()["value"].as_f64().unwrap();
    let by_hand = one_value(&env, "SELECT 1 - count(DISTINCT (page, ms))::float8 / count(*) FROM {s}.visits");
    assert!((overall - by_hand).abs() < 1e-12, "{overall} against {by_hand}");
    // A range without rows: no day, and the whole-table check's one row has no value.
    let (code, empty, err) = check(&env, &dir, &["--since", "2026-12-01", "--until", "2026-12-05"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(empty.len(), 1, "{empty:?}");
    assert!(empty[0]["check"] == "repeats overall" && empty[0]["value"].is_null(), "{empty:?}");
    // An append on one day: the gate judges that day, over all of its rows (the earlier
    // load's too), whatever days it measured.
    let more: String = (0..3).map(|i| format!("{{\"at\": \"2026-11-02 23:0{i}:00\", \"page\": \"p1\", \"ms\": 7}}\n")).collect();
    let more = env.write("more.json", more);
    let (code, _, err) = run(env.tier(&["--datasets", dir.to_str().unwrap(), "load", "visits", "--from", more.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    let gate = env.query_strings(
        "SELECT check_name, grp, value::text FROM {s}.tier_checks WHERE load_id = (SELECT max(id) FROM {s}.tier_loads) AND grp IS NOT NULL ORDER BY 1",
    );
    let of_day = "FROM {s}.visits WHERE (at AT TIME ZONE 'UTC')::date = '2026-11-02'";
    let expected = [
        ("mean", format!("SELECT avg(ms)::float8 {of_day}")),
        ("pages", format!("SELECT count(DISTINCT page) {of_day}")),
        ("repeats", format!("SELECT 1 - count(DISTINCT (page, ms))::float8 / count(*) {of_day}")),
        ("rows", format!("SELECT count(*) {of_day}")),
    ];
    assert_eq!(gate.len(), 4, "{gate:?}");
    for (row, (name, sql)) in gate.iter().zip(expected) {
        assert_eq!((row[0].as_deref(), row[1].as_deref()), (Some(name), Some("2026-11-02")), "{gate:?}");
        let (kept, by_hand) = (row[2].as_deref().unwrap().parse::<f64>().unwrap(), one_value(&env, &sql));
        assert!((kept - by_hand).abs() < 1e-12, "{name}: {kept} against {by_hand}");
    }
}

#[test]
fn a_failing_check_exits_1_and_says_why() {
    let env = Env::new("checks_fail");
    let text = SALES.replace(
        "name = \"device missing\"\nmetric = \"missing_share(device)\"\nwarn = \"> 0.05\"\nfail = \"> 0.5\"",
        "name = \"device missing\"\nmetric = \"missing_share(device)\"\nfail = \"> 0.05\"",
    );
    // Loaded under the contract as it was; its stricter successor is run on the table.
    let (_, _) = (contract(&env, "cities", CITIES), env.write("cities.json", "{\"city\": \"Berlin\"}\n{\"city\": \"Paris\"}\n"));
    let dir = contract(&env, "sales", SALES);
    env.write("sales.json", sales());
    let (code, _, err) = run(env.tier(&["--datasets", dir.to_str().unwrap(), "load"]));
    assert_eq!(code, 0, "{err}");
    contract(&env, "sales", &text);
    let (code, out, err) = run(env.tier(&["--datasets", dir.to_str().unwrap(), "check", "sales"]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("FAIL") && out.contains("is fail > 0.05"), "{out}");
    assert!(err.contains("checks failed"), "{err}");
}

#[test]
fn mistakes_in_checks_are_located_before_anything_runs() {
    let env = Env::new("checks_mistakes");
    let bad = format!(
        "{}\n[[check]]\nname = \"x\"\nmetric = \"avg(city)\"\nfail = \"> 1\"\n\n[[check]]\nname = \"y\"\nmetric = \"row_count\"\nfail = \"about 3\"\n",
        SALES
    );
    let dir = contract(&env, "sales", &bad);
    let (code, out, err) = run(env.tier_plain(&["--datasets", dir.to_str().unwrap(), "datasets", "check"]));
    assert_eq!(code, 3, "{err}");
    let said = format!("{out}{err}");
    assert!(said.contains("sales.toml:101:10: city is text: this metric measures number columns"), "{said}");
    assert!(said.contains("sales.toml:107:8: \"about 3\": a comparison and a number"), "{said}");
}

#[test]
fn a_failing_check_stops_the_load_and_leaves_the_previous_table() {
    let env = Env::new("checks_gate");
    let gate = "name = \"pings\"\nday = \"at\"\nmode = \"append\"\n\
        [[column]]\nname = \"at\"\ntype = \"timestamp\"\n[[column]]\nname = \"v\"\ntype = \"integer\"\n\
        [[check]]\nname = \"v present\"\nmetric = \"missing_share(v)\"\nwarn = \"> 0\"\nfail = \"> 0.5\"\n\
        [[check]]\nname = \"rows per day\"\nmetric = \"row_count\"\nper = \"day\"\nwarn = \"< 3\"\n";
    let dir = contract(&env, "pings", gate);
    let d = dir.to_str().unwrap();
    let good = env.write(
        "good.json",
        "{\"at\": \"2026-11-01 10:00:00\", \"v\": 1}\n{\"at\": \"2026-11-01 11:00:00\", \"v\": 2}\n{\"at\": \"2026-11-01 12:00:00\"}\n",
    );
    let (code, out, err) = run(env.tier(&["--datasets", d, "load", "pings", "--from", good.to_str().unwrap(), "--json"]));
    assert_eq!(code, 0, "{err}");
    // Warnings pass the gate, and are said: a third of v missing, a day of 3 rows is fine.
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let warned = summary[0]["check_warnings"].as_array().map(|w| w.len()).unwrap_or(0);
    assert_eq!(warned, 1, "{summary}");
    let before = env.fingerprint("pings");
    // Mostly missing: the gate fails, the append is undone, and the evaluation is kept.
    let bad = env.write("bad.json", "{\"at\": \"2026-11-02 10:00:00\"}\n{\"at\": \"2026-11-02 11:00:00\"}\n{\"at\": \"2026-11-02 12:00:00\"}\n{\"at\": \"2026-11-02 12:30:00\"}\n");
    let (code, _, err) = run(env.tier(&["--datasets", d, "load", "pings", "--from", bad.to_str().unwrap()]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("check \"v present\": ") && err.contains("the table is left as it was"), "{err}");
    assert_eq!(env.fingerprint("pings"), before);
    let kept = env.query_strings("SELECT outcome, load_id::text FROM {s}.tier_checks WHERE check_name = 'v present' ORDER BY id");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[1][0].as_deref(), Some("fail"));
    let ledger = env.query_strings("SELECT status FROM {s}.tier_loads ORDER BY id");
    assert_eq!(ledger.last().unwrap()[0].as_deref(), Some("failed"));
    // The latest load alone: its rows, not the table's.
    let more = env.write("more.json", "{\"at\": \"2026-11-03 10:00:00\", \"v\": 5}\n{\"at\": \"2026-11-03 11:00:00\", \"v\": 6}\n");
    let (code, _, err) = run(env.tier(&["--datasets", d, "load", "pings", "--from", more.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(env.tier(&["--datasets", d, "check", "pings", "--latest-load", "--format", "json"]));
    assert_eq!(code, 0, "{err}");
    let evaluations: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let present = evaluations.iter().find(|e| e["check"] == "v present").unwrap();
    assert_eq!(present["value"].as_f64(), Some(0.0), "the latest load has v in every row: {present}");
    assert!(present["group"].as_str().unwrap().starts_with("load "), "{present}");
    let days: Vec<&str> = evaluations.iter().filter(|e| e["check"] == "rows per day").map(|e| e["group"].as_str().unwrap()).collect();
    assert_eq!(days, ["2026-11-03"]);
}

#[test]
fn the_junit_output_is_valid_against_the_junit_schema() {
    let (env, dir) = setup("checks_junit");
    // A failing check too (a threshold the table crosses), with text XML must escape.
    contract(
        &env,
        "sales",
        &SALES.replace(
            "name = \"largest\"\nmetric = \"max(amount)\"\nfail = \"> 1000\"",
            "name = \"largest <& \\\"'\"\nmetric = \"max(amount)\"\nfail = \"> 10\"",
        ),
    );
    let (code, out, err) = run(env.tier(&["--datasets", dir.to_str().unwrap(), "check", "--format", "junit"]));
    assert_eq!(code, 1, "{err}");
    let report = env.write("checks.xml", &out);
    let venv = python_venv("requirements-junit.txt");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/junit_valid.py");
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("junit-schema");
    let checked = std::process::Command::new(venv.join("bin/python")).arg(script).arg(&report).arg(&cache).output().unwrap();
    assert!(checked.status.success(), "not valid JUnit: {}\n{out}", String::from_utf8_lossy(&checked.stderr));
    let (json_code, evaluations, _) = check(&env, &dir, &[]);
    assert_eq!(json_code, 1);
    let fails = evaluations.iter().filter(|e| e["outcome"] == "fail").count();
    assert_eq!(String::from_utf8_lossy(&checked.stdout).trim(), format!("{} {fails}", evaluations.len()));
    assert_eq!(fails, 1);
}

#[test]
fn infer_suggests_checks_that_run_once_uncommented() {
    let env = Env::new("checks_infer");
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) = run(env.tier_plain(&["gen", "--events", "3000", "--weather", "10", "--seed", "3", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    let events = env.data().join("track_events.json");
    let (code, out, err) = run(env.tier_plain(&["infer", events.to_str().unwrap(), "--name", "ev"]));
    assert_eq!(code, 0, "{err}");
    let at = out.find("# Checks worth declaring").unwrap_or_else(|| panic!("no checks suggested:\n{out}"));
    let (head, tail) = out.split_at(at);
    let uncommented: String = tail.lines().skip(1).map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l))).collect();
    assert!(uncommented.contains("metric = \"row_count\"\nper = \"day\""), "{uncommented}");
    let dir = contract(&env, "ev", &format!("{head}{uncommented}"));
    let d = dir.to_str().unwrap();
    let (code, out, err) = run(env.tier_plain(&["--datasets", d, "datasets", "check"]));
    assert_eq!(code, 0, "{out}{err}\n{uncommented}");
    let (code, _, err) = run(env.tier(&["--datasets", d, "load", "ev", "--from", events.to_str().unwrap(), "--max-reject-ratio", "1"]));
    assert_eq!(code, 0, "{err}");
    let (code, evaluations, err) = check(&env, &dir, &[]);
    assert_eq!(code, 0, "{evaluations:?}\n{err}");
    let suggested = uncommented.matches("[[check]]").count();
    let names: std::collections::BTreeSet<&str> = evaluations.iter().map(|e| e["check"].as_str().unwrap()).collect();
    assert_eq!(names.len(), suggested, "{names:?}");
}

#[test]
fn daily_loads_find_the_planted_drop_on_its_day_and_no_other() {
    let env = Env::new("checks_daily");
    let text = "name = \"pings\"\nday = \"at\"\nmode = \"append\"\n\
        [[column]]\nname = \"at\"\ntype = \"timestamp\"\n[[column]]\nname = \"n\"\ntype = \"integer\"\n\
        [[check]]\nname = \"rows per day\"\nmetric = \"row_count\"\nper = \"day\"\nanomaly = { window = 28, sensitivity = 3 }\n";
    let dir = contract(&env, "pings", text);
    let d = dir.to_str().unwrap();
    // A month of daily loads of 100-104 rows, then a day of 30.
    for day in 1..=31u32 {
        let (month, dom) = if day <= 30 { (11, day) } else { (12, 1) };
        let rows = if day == 31 { 30 } else { 100 + day % 5 };
        let text: String =
            (0..rows).map(|i| format!("{{\"at\": \"2026-{month:02}-{dom:02} {:02}:{:02}:00\", \"n\": {i}}}\n", i / 60, i % 60)).collect();
        let file = env.write(&format!("day-{day:02}.json"), text);
        let (code, out, err) = run(env.tier(&["--datasets", d, "load", "pings", "--from", file.to_str().unwrap(), "--json"]));
        assert_eq!(code, 0, "day {day}: {err}");
        let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
        let warned = summary[0]["check_warnings"].as_array().cloned().unwrap_or_default();
        match day {
            31 => assert!(warned.len() == 1 && warned[0].as_str().unwrap().contains("anomaly"), "day {day}: {summary}"),
            _ => assert!(warned.is_empty(), "day {day} warned: {summary}"),
        }
    }
    // Each load's gate judged its own day, once: the history holds one evaluation a load.
    let history = env.query_strings(
        "SELECT count(*)::text, count(DISTINCT load_id)::text, count(*) FILTER (WHERE outcome = 'warn')::text FROM {s}.tier_checks",
    );
    assert_eq!(history[0], [Some("31".to_string()), Some("31".to_string()), Some("1".to_string())]);
}

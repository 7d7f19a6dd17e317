//! `tier validate` catches what goes wrong after a load.

use crate::common::*;

/// A loaded schema from generated exports; `validate` must pass on it first.
fn loaded(name: &str) -> Env {
    let env = Env::new(name);
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) =
        run(env.tier_plain(&["gen", "--events", "3000", "--weather", "600", "--seed", "5", "--defect-share", "0.1", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(env.tier(&["load"]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(env.tier(&["validate"]));
    assert_eq!(code, 0, "a fresh load must validate: {out}{err}");
    assert!(err.contains("checks match"), "{err}");
    env
}

/// Runs validate expecting differences; returns the failing checks as (table, check).
fn failing(env: &Env) -> Vec<(String, String)> {
    let (code, out, err) = run(env.tier(&["validate", "--format", "json"]));
    assert_eq!(code, 1, "{out}{err}");
    let checks: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    checks
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| (c["table"].as_str().unwrap().to_string(), c["check"].as_str().unwrap().trim().to_string()))
        .collect()
}

fn sql(env: &Env, statement: &str) {
    client().batch_execute(&statement.replace("{s}", &env.schema)).unwrap();
}

#[test]
fn a_deleted_row_is_caught() {
    let env = loaded("v_deleted");
    sql(&env, "DELETE FROM {s}.weather WHERE ctid = (SELECT min(ctid) FROM {s}.weather)");
    let f = failing(&env);
    assert!(f.contains(&("weather".into(), "loaded rows".into())), "{f:?}");
    assert!(f.contains(&("weather".into(), "content digest".into())), "{f:?}");
    assert!(f.iter().all(|(t, _)| t == "weather"), "{f:?}");
}

#[test]
fn a_zero_turned_null_is_caught() {
    let env = Env::new("v_zero_null");
    let lines = [weather_line("Oslo", "2019-06-04 14:05:13", "0.0"), weather_line("Oslo", "2019-06-05 14:05:13", "0.5")];
    env.write("weather.json", format!("[{}]", lines.join(",\n")));
    let (code, _, err) = run(env.tier(&["load", "weather"]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(env.tier(&["validate", "weather"]));
    assert_eq!(code, 0, "{out}{err}");
    sql(&env, "UPDATE {s}.weather SET humidity = NULL WHERE humidity = 0");
    let (code, out, err) = run(env.tier(&["validate", "weather", "--format", "json"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("contents differ on 2019-06-04"), "{out}");
}

#[test]
fn an_extra_row_is_caught() {
    let env = loaded("v_extra");
    sql(&env, "INSERT INTO {s}.track_events SELECT * FROM {s}.track_events LIMIT 1");
    let f = failing(&env);
    assert!(f.contains(&("track_events".into(), "loaded rows".into())), "{f:?}");
    assert!(f.iter().any(|(_, c)| c.starts_with("rows on")), "per-day counts name the day: {f:?}");
}

#[test]
fn an_edited_value_is_caught() {
    let env = loaded("v_edited");
    sql(&env, "UPDATE {s}.weather SET humidity = 0.4242 WHERE ctid = (SELECT min(ctid) FROM {s}.weather)");
    let f = failing(&env);
    assert_eq!(f, vec![("weather".to_string(), "content digest".to_string())]);
    let (_, out, _) = run(env.tier(&["validate", "--format", "json"]));
    assert!(out.contains("contents differ on "), "the day of the edit is named: {out}");
}

/// Trusting the ledger, validate splits the server's aggregate by block ranges over two
/// connections: a row in the table's last block counts, once, as one in its first does.
#[test]
fn rows_at_either_end_of_the_table_count_once() {
    let env = loaded("v_ends");
    let blocks = env.query_strings("SELECT (pg_relation_size('{s}.track_events') / current_setting('block_size')::int)::text");
    assert!(blocks[0][0].as_deref().unwrap().parse::<i64>().unwrap() > 4, "the table spans blocks: {blocks:?}");
    for end in ["min", "max"] {
        sql(&env, &format!("DELETE FROM {{s}}.track_events WHERE ctid = (SELECT {end}(ctid) FROM {{s}}.track_events)"));
    }
    let (code, out, err) = run(env.tier(&["validate", "track_events", "--format", "json"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("figures as load"), "the ledger's figures, so the split aggregate: {err}");
    let checks: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let loaded = checks.iter().find(|c| c["check"].as_str().is_some_and(|c| c.trim() == "loaded rows")).expect("a loaded rows check");
    assert_eq!(loaded["diff"], "-2", "{loaded}");
}

#[test]
fn a_missing_table_is_caught() {
    let env = loaded("v_missing");
    sql(&env, "DROP TABLE {s}.weather");
    let f = failing(&env);
    assert_eq!(f, vec![("weather".to_string(), "table exists".to_string())]);
}

#[test]
fn a_source_file_changed_since_the_load_is_caught() {
    let env = loaded("v_changed");
    let path = env.data().join("weather.json");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(format!(",\n{}\n", weather_line("Oslo", "2030-01-01 00:00:00", "0.5")).as_bytes());
    std::fs::write(&path, bytes).unwrap();
    let f = failing(&env);
    assert!(f.contains(&("weather".into(), "source checksum (file vs tier_loads)".into())), "{f:?}");
    assert!(f.contains(&("weather".into(), "loaded rows".into())), "{f:?}");
}

#[test]
fn validate_cannot_check_without_files_or_database() {
    let env = Env::new("v_unreachable");
    let (code, _, err) = run(env.tier(&["validate", "weather"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("weather.json: no such file"), "{err}");
    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 14:05:13", "0.5")));
    let mut cmd = env.tier_plain(&["validate", "weather", "--database-url", "postgresql://postgres@127.0.0.1:1/x?connect_timeout=2"]);
    cmd.env_remove("DATABASE_URL");
    let (code, _, err) = run(cmd);
    assert_eq!(code, 4, "{err}");
}

#[test]
fn each_appended_file_is_checked_against_its_own_rows() {
    let env = Env::new("v_append");
    let first = [weather_line("Oslo", "2019-06-04 14:05:13", "0.43"), weather_line("Oslo", "2019-06-05 14:05:13", "0.5")];
    let second = [weather_line("Bern", "2019-06-06 10:00:00", "0.7")];
    for lines in [&first[..], &second[..]] {
        env.write("weather.json", format!("[{}]", lines.join(",\n")));
        let (code, _, err) = run(env.tier(&["load", "weather", "--mode", "append"]));
        assert_eq!(code, 0, "{err}");
    }
    // The latest file: the first guess is right.
    let (code, out, err) = run(env.tier(&["validate", "weather"]));
    assert_eq!(code, 0, "{out}{err}");
    // The older file: its own load's rows, not the latest's and not the whole table's.
    env.write("weather.json", format!("[{}]", first.join(",\n")));
    let (code, out, err) = run(env.tier(&["validate", "weather", "--format", "json"]));
    assert_eq!(code, 0, "{out}{err}");
    let checks: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let rows = checks.iter().find(|c| c["check"] == "loaded rows").unwrap();
    assert_eq!((rows["expected"].as_str(), rows["actual"].as_str()), (Some("2"), Some("2")), "{out}");
    // An edit in the older file's rows is caught there.
    sql(&env, "UPDATE {s}.weather SET humidity = 0.44 WHERE humidity = 0.43");
    let (code, out, err) = run(env.tier(&["validate", "weather", "--format", "json"]));
    assert_eq!(code, 1, "{out}{err}");
    let checks: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let failed: Vec<&str> = checks.iter().filter(|c| c["ok"] == false).map(|c| c["check"].as_str().unwrap()).collect();
    assert_eq!(failed, vec!["content digest"], "{out}");
}

/// `pg::hash` must agree with the server's own functions, value for value: validate compares
/// sums of them. Lengths 0-40 cover every tail of the 12-byte blocks.
#[test]
fn client_side_hashes_match_the_servers() {
    use tier::hash;
    let mut db = client();
    let texts: Vec<String> =
        (0..41).map(|n| (0..n).map(|i| char::from(b'a' + ((i * 7 + n) % 26) as u8)).collect()).chain(["Zürich ✓".to_string()]).collect();
    for seed in [0i64, 1, -5, 0x1234_5678_9abc] {
        for t in &texts {
            let server: i64 = db.query_one("SELECT hashtextextended($1, $2)", &[t, &seed]).unwrap().get(0);
            assert_eq!(hash::text(t, seed as u64) as i64, server, "text {t:?} seed {seed}");
        }
        for v in [0i32, 1, -1, 5, i32::MAX, i32::MIN, 123_456] {
            let server: i64 = db.query_one("SELECT hashint4extended($1, $2)", &[&v, &seed]).unwrap().get(0);
            assert_eq!(hash::int4(v, seed as u64) as i64, server, "int4 {v} seed {seed}");
        }
        for v in [0.0f64, -0.0, 0.0305, -12.5, 1e300, f64::MIN_POSITIVE, 29.09] {
            let server: i64 = db.query_one("SELECT hashfloat8extended($1, $2)", &[&v, &seed]).unwrap().get(0);
            assert_eq!(hash::float8(v, seed as u64) as i64, server, "float8 {v} seed {seed}");
        }
        for (text, unix_micros) in [
            ("2019-05-13 14:23:41", 1_557_757_421_000_000i64),
            ("1969-12-31 23:59:59.5", -500_000),
            ("2000-01-01 00:00:00", 946_684_800_000_000),
        ] {
            let server: i64 = db.query_one("SELECT timestamp_hash_extended($1::text::timestamp, $2)", &[&text, &seed]).unwrap().get(0);
            assert_eq!(hash::timestamp(unix_micros, seed as u64) as i64, server, "timestamp {text} seed {seed}");
        }
        for v in [0i64, 1, -1, i64::MAX, i64::MIN, 1 << 40, -(1 << 33) + 7] {
            let server: i64 = db.query_one("SELECT hashint8extended($1, $2)", &[&v, &seed]).unwrap().get(0);
            assert_eq!(hash::int8(v, seed as u64) as i64, server, "int8 {v} seed {seed}");
        }
        for v in [true, false] {
            let server: i64 = db.query_one("SELECT hashcharextended($1::bool::int::\"char\", $2)", &[&v, &seed]).unwrap().get(0);
            let via_record: i64 = db.query_one("SELECT hash_record_extended(row($1::bool), $2)", &[&v, &seed]).unwrap().get(0);
            assert_eq!(hash::boolean(v, seed as u64) as i64, server, "bool {v} seed {seed}");
            assert_eq!(hash::combine(0, hash::boolean(v, seed as u64)) as i64, via_record, "bool in a row {v} seed {seed}");
        }
        for (text, unix_days) in [("1970-01-01", 0i32), ("2000-01-01", 10_957), ("1969-12-31", -1), ("2019-05-13", 18_029)] {
            let server: i64 = db.query_one("SELECT hash_record_extended(row($1::text::date), $2)", &[&text, &seed]).unwrap().get(0);
            assert_eq!(hash::combine(0, hash::date(unix_days, seed as u64)) as i64, server, "date {text} seed {seed}");
        }
        // numeric: the digits without the scale's zeros; sign and scale not hashed.
        for text in ["0", "0.00", "1", "1.0", "-1", "12345.6789", "0.000012", "100000000", "-99999999999999999999.5", "1e-30", "7.10"] {
            let canonical = tier::values::number::parse_numeric(text).unwrap();
            let server: i64 = db.query_one("SELECT hash_numeric_extended($1::text::numeric, $2)", &[&text, &seed]).unwrap().get(0);
            assert_eq!(hash::numeric(&canonical, seed as u64) as i64, server, "numeric {text} seed {seed}");
        }
        // jsonb: sorted keys, duplicates dropped, numbers as numeric, scalars as raw-scalar arrays.
        for text in [
            "null",
            "true",
            "false",
            "1.50",
            "\"x\"",
            "[]",
            "{}",
            "[1, \"a\", null, true, [false, {\"k\": 2}]]",
            r#"{"bb": 1, "a": [true, null, "x"], "b": 2.50, "a": 3e2, "é": {"deep": {"er": []}}}"#,
            r#"{"app": {"version": "1.2", "build": 7}, "device": {"type": "ios"}}"#,
        ] {
            let tree = tier::values::json::parse(text).unwrap();
            let server: i64 = db.query_one("SELECT jsonb_hash_extended($1::text::jsonb, $2)", &[&text, &seed]).unwrap().get(0);
            assert_eq!(hash::jsonb(&tree, seed as u64) as i64, server, "jsonb {text} seed {seed}");
        }
    }
    // A whole row, NULLs included, as validate asks for it.
    let seed = tier::figures::ROW_HASH_SEED;
    let server: i64 = db
        .query_one(
            "SELECT hash_record_extended(r, $1) FROM (SELECT 'Oslo'::text, NULL::float8, 0.5::float8, 0.0::float8, 3::int4, '2019-05-13 14:23:41'::timestamp) r",
            &[&(seed as i64)],
        )
        .unwrap()
        .get(0);
    let mut h = 0u64;
    for e in [
        hash::text("Oslo", seed),
        0,
        hash::float8(0.5, seed),
        hash::float8(0.0, seed),
        hash::int4(3, seed),
        hash::timestamp(1_557_757_421_000_000, seed),
    ] {
        h = hash::combine(h, e);
    }
    assert_eq!(h as i64, server);
    assert_ne!(hash::float8(0.0, seed), 0, "under this seed a 0.0 does not hash like a NULL");
}

#[test]
fn validate_trusts_the_figures_a_load_recorded_and_rereads_on_request() {
    let env = loaded("v_ledger");
    // By default the file is not parsed again: its checksum names a load whose figures count.
    let (code, out, err) = run(env.tier(&["validate"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("figures as load") && err.contains("weather.json"), "{err}");
    let (code, out, err) = run(env.tier(&["validate", "--reread"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("figures as load"), "{err}");
    // The ledger's figures are the ones a re-read computes.
    let recorded = env.query_strings("SELECT figures::text FROM {s}.tier_loads WHERE table_name = 'weather'");
    assert!(recorded[0][0].as_deref().is_some_and(|f| f.starts_with("{\"days\": [[")), "{recorded:?}");
    // Either way, an edit in the database is caught.
    sql(&env, "UPDATE {s}.weather SET humidity = 0.4242 WHERE ctid = (SELECT min(ctid) FROM {s}.weather)");
    for args in [&["validate"][..], &["validate", "--reread"][..]] {
        let (code, out, _) = run(env.tier(args));
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(out.contains("contents differ on "), "{args:?}: {out}");
    }
}

#[test]
fn a_ledger_from_before_figures_is_read_again() {
    let env = loaded("v_old_ledger");
    // A ledger as an earlier tier left it: no figures column.
    sql(&env, "ALTER TABLE {s}.tier_loads DROP COLUMN figures");
    let (code, out, err) = run(env.tier(&["validate"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("figures as load"), "{err}");
}

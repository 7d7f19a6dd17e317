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

//! The hostile corpus (tests/hostile/, written by make_corpus.py): every file loads with
//! each record loaded or quarantined, or fails with a message naming the file; never a
//! panic, a hang or a lost row, and a failure leaves the previous table as it was.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile");

/// Runs with a time limit: a hang is a failure, not a stuck test run.
fn run_bounded(mut cmd: Command, limit: Duration) -> (i32, String) {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("tier hung for {limit:?} on {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Outcome {
    code: i32,
    err: String,
    /// (records, loaded, rejected_by_reason, warnings) from the ledger, when it loaded.
    ledger: Option<(i64, i64, serde_json::Value, serde_json::Value)>,
}

fn load(env: &Env, file: &Path) -> Outcome {
    let target = env.data().join("weather.json");
    let _ = std::fs::remove_file(&target);
    let _ = std::fs::remove_dir(&target);
    std::fs::copy(file, &target).unwrap();
    let (code, err) = run_bounded(env.tier(&["load", "weather", "--max-reject-ratio", "1"]), Duration::from_secs(120));
    let ledger = (code == 0).then(|| {
        let row = client()
            .query_one(
                &format!("SELECT records, loaded, rejected, rejected_by_reason::text, warnings::text FROM {}.tier_loads WHERE status = 'ok' ORDER BY id DESC LIMIT 1", env.schema),
                &[],
            )
            .unwrap();
        let (records, loaded, rejected): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(records, loaded + rejected, "{}: nothing lost", file.display());
        assert_eq!(env.count("weather"), loaded, "{}", file.display());
        assert_eq!(env.count("weather_rejects"), rejected, "{}", file.display());
        let parse = |i: usize| serde_json::from_str::<serde_json::Value>(&row.get::<_, String>(i)).unwrap();
        (records, loaded, parse(3), parse(4))
    });
    Outcome { code, err, ledger }
}

#[test]
fn every_hostile_file_is_loaded_or_refused_cleanly() {
    let env = Env::new("hostile");
    let baseline = env.write("baseline.json", format!("[{}", weather_line("Bergen", "2019-06-04 10:00:00", "0.5")));
    let mut files: Vec<_> =
        std::fs::read_dir(CORPUS).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    files.sort();
    assert!(files.len() >= 40, "the corpus has {} files", files.len());
    let mut refused = Vec::new();
    for file in &files {
        // Start each from a known table, so a refusal can be seen to keep it.
        assert_eq!(load(&env, &baseline).code, 0);
        let before = (env.fingerprint("weather"), env.fingerprint("weather_rejects"));
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let out = load(&env, file);
        assert!(!out.err.contains("panicked"), "{name}: {}", out.err);
        match out.code {
            0 => {}
            3 => {
                assert!(out.err.contains("weather.json"), "{name}: the message names the file: {}", out.err);
                assert_eq!((env.fingerprint("weather"), env.fingerprint("weather_rejects")), before, "{name}: previous table kept");
                refused.push(name);
            }
            other => panic!("{name}: exit {other}: {}", out.err),
        }
    }
    refused.sort();
    assert_eq!(refused, vec!["bom_only.json", "empty.json", "only_close_bracket.json", "only_open_bracket.json", "whitespace_only.json"]);
}

fn expect(name: &str, records: i64, loaded: i64, reasons: serde_json::Value, nan: i64) {
    let env = Env::new(&format!("h_{}", name.trim_end_matches(".json")));
    let out = load(&env, &Path::new(CORPUS).join(name));
    assert_eq!(out.code, 0, "{name}: {}", out.err);
    let (r, l, by_reason, warnings) = out.ledger.unwrap();
    assert_eq!((r, l), (records, loaded), "{name}: {by_reason}");
    assert_eq!(by_reason, reasons, "{name}");
    assert_eq!(warnings["nan_as_null"], nan, "{name}");
}

#[test]
fn specific_hostile_records_get_the_right_reason() {
    use serde_json::json;
    expect("year_0.json", 2, 1, json!({"bad_timestamp": 1}), 0);
    expect("year_9999.json", 2, 2, json!({}), 0);
    expect("time_zones.json", 3, 3, json!({}), 0);
    expect("leap_second.json", 2, 2, json!({}), 0);
    expect("impossible_dates.json", 3, 1, json!({"bad_timestamp": 2}), 0);
    expect("infinity_tokens.json", 3, 1, json!({"bad_number": 2}), 0);
    expect("nan_tokens.json", 4, 4, json!({}), 3);
    expect("huge_numbers.json", 3, 2, json!({"bad_number": 1}), 0);
    expect("duplicate_keys.json", 2, 1, json!({"malformed": 1}), 0);
    expect("escaped_nul.json", 2, 1, json!({"bad_value": 1}), 0);
    expect("object_where_scalar_belongs.json", 2, 1, json!({"bad_value": 1}), 0);
    expect("truncated_then_more.json", 3, 2, json!({"malformed": 1}), 0);
    expect("two_objects_one_line.json", 3, 3, json!({}), 0);
    expect("escaped_keys.json", 2, 2, json!({}), 0);
    expect("invalid_utf8_value.json", 2, 1, json!({"malformed": 1}), 0);
    expect("unknown_keys_only.json", 2, 1, json!({"missing_required": 1}), 0);
    expect("every_field_wrong_type.json", 5, 1, json!({"bad_timestamp": 1, "bad_number": 1, "bad_value": 1, "missing_required": 1}), 0);
}

#[test]
fn a_fifty_megabyte_line_loads() {
    let env = Env::new("hugeline");
    let line = weather_line(&"x".repeat(50 << 20), "2019-06-04 10:00:00", "0.5");
    env.write("weather.json", format!("[{},\n{}", weather_line("Oslo", "2019-06-04 10:00:00", "0.5"), line));
    let (code, err) = run_bounded(env.tier(&["load", "weather"]), Duration::from_secs(300));
    assert_eq!(code, 0, "{err}");
    let len: i32 = client().query_one(&format!("SELECT max(length(city)) FROM {}.weather", env.schema), &[]).unwrap().get(0);
    assert_eq!(len, 50 << 20);
}

#[test]
fn a_directory_or_a_dangling_link_is_a_clear_error() {
    let env = Env::new("notafile");
    std::fs::create_dir(env.data().join("weather.json")).unwrap();
    let (code, err) = run_bounded(env.tier(&["load", "weather"]), Duration::from_secs(60));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("weather.json") && err.contains("directory"), "{err}");
    std::fs::remove_dir(env.data().join("weather.json")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/export.json", env.data().join("weather.json")).unwrap();
    let (code, err) = run_bounded(env.tier(&["load", "weather"]), Duration::from_secs(60));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("weather.json"), "{err}");
}

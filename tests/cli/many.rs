//! Many export files into one table: in parallel, each once, and a crash costs nothing.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn twenty_files_a_crash_and_a_rerun_load_each_file_exactly_once() {
    let env = Env::new("many");
    let files = env.data().join("track_events");
    std::fs::create_dir_all(&files).unwrap();
    let mut expected_rows = 0i64;
    for seed in 0..20u64 {
        let set = env.data().join(format!("gen{seed}"));
        let (code, _, err) = run(env.tier_plain(&[
            "gen",
            "--events",
            "1500",
            "--weather",
            "1",
            "--seed",
            &seed.to_string(),
            "--defect-share",
            "0.05",
            "--out",
            set.to_str().unwrap(),
        ]));
        assert_eq!(code, 0, "{err}");
        let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(set.join("gen-manifest.json")).unwrap()).unwrap();
        expected_rows += manifest["track_events"]["loaded"].as_i64().unwrap();
        let export = std::fs::read(set.join("track_events.json")).unwrap();
        if seed % 2 == 0 {
            std::fs::write(files.join(format!("day-{seed:02}.json")), export).unwrap();
        } else {
            let mut gz = flate2::write::GzEncoder::new(
                std::fs::File::create(files.join(format!("day-{seed:02}.json.gz"))).unwrap(),
                flate2::Compression::fast(),
            );
            gz.write_all(&export).unwrap();
            gz.finish().unwrap();
        }
    }
    let dir = files.to_str().unwrap().to_string();
    let ok_loads = || -> i64 {
        let sql = format!("SELECT count(*) FROM {}.tier_loads WHERE status = 'ok'", env.schema);
        client().query_one(&sql, &[]).map(|r| r.get(0)).unwrap_or(0)
    };

    // A crash partway: SIGKILL once a few files are in.
    let mut child =
        env.tier(&["load", "track_events", "--from", &dir, "--jobs", "2"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while ok_loads() < 5 {
        assert!(child.try_wait().unwrap().is_none(), "the load finished before it could be killed");
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let after_crash = ok_loads();
    assert!(after_crash < 20, "killed partway ({after_crash} files in)");

    // The re-run loads what is missing, and only that.
    let (code, _, err) = run(env.tier(&["load", "track_events", "--from", &format!("{dir}/*.json*"), "--jobs", "3"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("{} already loaded", after_crash)), "{err}");
    assert_eq!(ok_loads(), 20);
    assert_eq!(env.count("track_events"), expected_rows);
    let sql = format!(
        "SELECT count(DISTINCT checksum), count(*), (SELECT count(*) - count(DISTINCT t) FROM {s}.track_events t) FROM {s}.tier_loads WHERE status = 'ok'",
        s = env.schema
    );
    let row = client().query_one(&sql, &[]).unwrap();
    let (distinct, all, duplicated): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((distinct, all, duplicated), (20, 20, 0), "each file once, no row twice");

    // Once more: nothing to do.
    let (code, _, err) = run(env.tier(&["load", "track_events", "--from", &dir]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 of 20 files loaded, 20 already loaded"), "{err}");
    assert_eq!(env.count("track_events"), expected_rows);
}

#[test]
fn from_needs_a_table_and_matching_files_and_replace_takes_one_file() {
    let env = Env::new("many_errors");
    let (code, _, err) = run(env.tier(&["load", "--from", "x"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(env.tier(&["load", "weather", "--from", "/nonexistent/*.json"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no export files"), "{err}");
    env.write("a.json", "{}");
    env.write("b.json", "{}");
    let pattern = format!("{}/*.json", env.data().display());
    let (code, _, err) = run(env.tier(&["load", "weather", "--from", &pattern, "--mode", "replace"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("--mode append"), "{err}");
}

//! The soak test: many loads and queries at once against one PostgreSQL, for a bounded
//! time, then every invariant checked. Not part of the default `cargo test`:
//!
//!     TIER_SOAK_SECS=120 cargo test --release --test cli -- --ignored soak
//!
//! Replace loads race on one schema, append loads of distinct files on another, and
//! queries run throughout. Afterwards: every ledger entry has loaded + rejected = records,
//! the replace table holds exactly its last load, the append table exactly its loads,
//! no row is duplicated within a load, no staging table is left, nothing failed.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

#[test]
#[ignore = "a soak test: run it on purpose (see the module docs)"]
fn soak() {
    let secs: u64 = std::env::var("TIER_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let replace = Env::new("soak_replace");
    let append = Env::new("soak_append");
    // Distinct files for append (a file is loaded once), one shared file set for replace.
    let files: Vec<std::path::PathBuf> = (0..40u64)
        .map(|seed| {
            let dir = append.data().join(format!("set{seed}"));
            let (code, _, err) = run(append.tier_plain(&[
                "gen",
                "--events",
                "2000",
                "--weather",
                "300",
                "--seed",
                &seed.to_string(),
                "--defect-share",
                "0.1",
                "--out",
                dir.to_str().unwrap(),
            ]));
            assert_eq!(code, 0, "{err}");
            dir
        })
        .collect();
    let (code, _, err) = run(replace.tier_plain(&[
        "gen",
        "--events",
        "5000",
        "--weather",
        "800",
        "--seed",
        "99",
        "--out",
        replace.data().to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{err}");
    let query =
        replace.write("count.sql", "select (select count(*) from track_events) as events, (select count(*) from weather) as weather");

    let deadline = Instant::now() + Duration::from_secs(secs);
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    let spawn_loop = |name: &'static str, make: Box<dyn Fn(usize) -> Option<Command> + Send>| {
        let (stop, failures) = (stop.clone(), failures.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Some(cmd) = make(i) else { break };
                let (code, _, err) = run(cmd);
                if code != 0 {
                    failures.lock().unwrap().push(format!("{name} #{i}: exit {code}: {err}"));
                }
                i += 1;
            }
            i
        })
    };
    for _ in 0..2 {
        let (schema, data) = (replace.schema.clone(), replace.data().to_path_buf());
        workers.push(spawn_loop(
            "replace load",
            Box::new(move |_| {
                let mut c = Command::new(tier_bin());
                c.arg("--data-dir").arg(&data).args(["-q", "load", "--database-url", server_url(), "--schema", &schema]);
                Some(c)
            }),
        ));
    }
    let next_file = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..2 {
        let (schema, files, next) = (append.schema.clone(), files.clone(), next_file.clone());
        workers.push(spawn_loop(
            "append load",
            Box::new(move |_| {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let dir = files.get(k)?;
                let mut c = Command::new(tier_bin());
                c.arg("--data-dir").arg(dir).args(["-q", "load", "--mode", "append", "--database-url", server_url(), "--schema", &schema]);
                Some(c)
            }),
        ));
    }
    for _ in 0..2 {
        let (schema, query) = (replace.schema.clone(), query.clone());
        workers.push(spawn_loop(
            "query",
            Box::new(move |i| {
                if i == 0 {
                    // The first load may not have committed yet.
                    std::thread::sleep(Duration::from_millis(500));
                }
                let mut c = Command::new(tier_bin());
                c.args(["-q", "query", query.to_str().unwrap(), "--format", "csv", "--database-url", server_url(), "--schema", &schema]);
                Some(c)
            }),
        ));
    }
    let runs: Vec<usize> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "{} failures, first: {}", failures.len(), failures[0]);
    eprintln!("soak: {secs}s, runs per worker {runs:?}");

    let mut c = client();
    for env in [&replace, &append] {
        let s = &env.schema;
        let bad: i64 = c
            .query_one(&format!("SELECT count(*) FROM {s}.tier_loads WHERE status <> 'ok' OR records <> loaded + rejected"), &[])
            .unwrap()
            .get(0);
        assert_eq!(bad, 0, "{s}: a ledger entry breaks loaded + rejected = records");
        let leftovers: i64 =
            c.query_one("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE '%\\_\\_tier\\_%'", &[s]).unwrap().get(0);
        assert_eq!(leftovers, 0);
        for table in ["track_events", "weather"] {
            let dup: i64 = c.query_one(&format!("SELECT count(*) - count(DISTINCT t) FROM {s}.{table} t"), &[]).unwrap().get(0);
            assert_eq!(dup, 0, "{s}.{table}: duplicated rows within a load");
        }
    }
    for table in ["track_events", "weather"] {
        let s = &replace.schema;
        let last: i64 = c
            .query_one(&format!("SELECT loaded FROM {s}.tier_loads WHERE table_name = $1 ORDER BY id DESC LIMIT 1"), &[&table])
            .unwrap()
            .get(0);
        assert_eq!(replace.count(table), last, "{table}: the replace table is its last load");
        let s = &append.schema;
        let sum: i64 = c
            .query_one(&format!("SELECT coalesce(sum(loaded), 0)::bigint FROM {s}.tier_loads WHERE table_name = $1"), &[&table])
            .unwrap()
            .get(0);
        assert_eq!(append.count(table), sum, "{table}: the append table is the sum of its loads");
        let loads: i64 = c
            .query_one(&format!("SELECT count(DISTINCT checksum) - count(*) FROM {s}.tier_loads WHERE table_name = $1"), &[&table])
            .unwrap()
            .get(0);
        assert_eq!(loads, 0, "{table}: no file appended twice");
    }
}

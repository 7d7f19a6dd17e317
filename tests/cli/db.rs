//! `tier db`: the project-local cluster, started from the installed binaries (as root
//! too, where PostgreSQL itself refuses to run).

use crate::common::*;

#[test]
fn local_cluster_starts_loads_and_stops() {
    let env = Env::new("localdb");
    // Outside the test's temp dir's parent chain issues: /tmp is reachable by any account.
    let pg_dir = tempfile::Builder::new().prefix("tier-localdb-").tempdir_in("/tmp").unwrap();
    let pg = pg_dir.path().join("pg");
    let tier = |args: &[&str]| {
        let mut c = env.tier_plain(args);
        c.env("TIER_PG_DIR", &pg);
        c
    };
    let (code, out, _) = run(tier(&["db", "status"]));
    assert_eq!(code, 0);
    assert!(out.starts_with("not created"), "{out}");

    let (code, url, err) = run(tier(&["db", "start"]));
    assert_eq!(code, 0, "{err}");
    let url = url.trim().to_string();
    assert!(url.starts_with("postgresql://postgres@127.0.0.1:"), "{url}");
    let (_, status, _) = run(tier(&["db", "status"]));
    assert!(status.starts_with("running"), "{status}");
    let (_, again, _) = run(tier(&["db", "url"]));
    assert_eq!(again.trim(), url);

    env.write("weather.json", format!("[{}", weather_line("Zurich", "2019-06-04 14:05:13", "0.43")));
    let mut load = tier(&["load", "weather", "--database-url", &url]);
    load.env_remove("DATABASE_URL");
    let (code, _, err) = run(load);
    assert_eq!(code, 0, "{err}");
    let mut c = connect(&url).unwrap();
    let n: i64 = c.query_one("SELECT count(*) FROM weather", &[]).unwrap().get(0);
    assert_eq!(n, 1);
    drop(c);

    let (code, _, err) = run(tier(&["db", "stop"]));
    assert_eq!(code, 0, "{err}");
    let (_, status, _) = run(tier(&["db", "status"]));
    assert!(status.starts_with("stopped"), "{status}");
}

#[test]
fn demo_on_a_fresh_clone_generates_data_and_falls_back_to_a_local_cluster() {
    let env = Env::new("demo");
    let pg_dir = tempfile::Builder::new().prefix("tier-demo-").tempdir_in("/tmp").unwrap();
    let pg = pg_dir.path().join("pg");
    let data = env.data().join("data");
    let mut cmd = std::process::Command::new(tier_bin());
    let reports = env.data().join("reports");
    cmd.arg("--data-dir").arg(&data).args([
        "demo",
        "--events",
        "2000",
        "--weather",
        "300",
        "--queries",
        concat!(env!("CARGO_MANIFEST_DIR"), "/queries"),
    ]);
    cmd.arg("--out").arg(&reports);
    // Nothing configured, and nothing answers at the default address.
    for var in ["DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"] {
        cmd.env_remove(var);
    }
    cmd.env("TIER_DEFAULT_URL", "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2");
    cmd.env("TIER_PG_DIR", &pg);
    let (code, out, err) = run(cmd);
    let stop = || {
        let mut c = env.tier_plain(&["db", "stop"]);
        c.env("TIER_PG_DIR", &pg);
        run(c)
    };
    if code != 0 {
        stop();
        panic!("demo failed: {err}");
    }
    assert!(err.contains("generating sample data"), "{err}");
    assert!(err.contains("local cluster"), "{err}");
    assert!(out.contains("track_events") && out.contains("weather"), "{out}");
    assert!(out.contains("content digest") && err.contains("checks match"), "validated: {out}{err}");
    assert!(err.contains("report: ") && reports.join("report.html").exists() && reports.join("report.md").exists(), "{err}");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(data.join("gen-manifest.json")).unwrap()).unwrap();
    let mut url_cmd = env.tier_plain(&["db", "url"]);
    url_cmd.env("TIER_PG_DIR", &pg);
    let url = run(url_cmd).1.trim().to_string();
    let mut c = connect(&url).unwrap();
    let n: i64 = c.query_one("SELECT count(*) FROM weather", &[]).unwrap().get(0);
    assert_eq!(n, manifest["weather"]["loaded"].as_i64().unwrap());
    drop(c);
    assert_eq!(stop().0, 0);
}

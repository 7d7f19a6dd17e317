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
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let n: i64 = c.query_one("SELECT count(*) FROM weather", &[]).unwrap().get(0);
    assert_eq!(n, 1);
    drop(c);

    let (code, _, err) = run(tier(&["db", "stop"]));
    assert_eq!(code, 0, "{err}");
    let (_, status, _) = run(tier(&["db", "status"]));
    assert!(status.starts_with("stopped"), "{status}");
}

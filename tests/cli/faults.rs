//! Loads that die halfway: the previous table and its rejects must stay exactly as they were,
//! and the next run must succeed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A data dir with a first, small load done, and a large export ready for the next one.
fn loaded_env(name: &str) -> (Env, String, String) {
    let env = Env::new(name);
    env.write("weather.json", format!("[{}", weather_line("Zurich", "2019-06-04 14:05:13", "0.43")));
    let (code, _, err) = run(env.tier(&["load", "weather"]));
    assert_eq!(code, 0, "{err}");
    let before = (env.fingerprint("weather"), env.fingerprint("weather_rejects"));
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) = run(env.tier_plain(&["gen", "--events", "0", "--weather", "300000", "--seed", "1", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    (env, before.0, before.1)
}

/// Waits until this schema's load is in the middle of COPY; returns the backend pid.
fn wait_for_copy(env: &Env, child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut c = client();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the load ended ({status}) before it could be interrupted");
        }
        let rows = c
            .query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'tier' AND query LIKE 'COPY%' AND query LIKE '%' || $1 || '%'",
                &[&env.schema],
            )
            .unwrap();
        if let Some(r) = rows.first() {
            return r.get(0);
        }
        assert!(Instant::now() < deadline, "the load never reached COPY");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_untouched(env: &Env, before: &str, rejects_before: &str) {
    assert_eq!(env.fingerprint("weather"), before, "the table changed");
    assert_eq!(env.fingerprint("weather_rejects"), rejects_before, "the rejects changed");
    let staging: i64 = client()
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE '%tier_new'", &[&env.schema])
        .unwrap()
        .get(0);
    assert_eq!(staging, 0, "a staging table was left behind");
}

fn spawn_load(env: &Env) -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd: Command = env.tier(&["load", "weather"]);
    // A test run started in the background by a shell without job control inherits SIGINT
    // ignored, and so would the load: give it the default action, as at a terminal.
    // SAFETY: signal() is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

fn next_run_succeeds(env: &Env) {
    let (code, _, err) = run(env.tier(&["load", "weather"]));
    assert_eq!(code, 0, "{err}");
    assert!(env.count("weather") > 250_000);
}

#[test]
fn sigkill_mid_copy_keeps_the_previous_table() {
    let (env, before, rejects_before) = loaded_env("sigkill");
    let mut child = spawn_load(&env);
    wait_for_copy(&env, &mut child);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The server notices the dropped connection and rolls back; give it a moment.
    std::thread::sleep(Duration::from_millis(500));
    assert_untouched(&env, &before, &rejects_before);
    next_run_succeeds(&env);
}

#[test]
fn sigint_mid_copy_keeps_the_previous_table() {
    let (env, before, rejects_before) = loaded_env("sigint");
    let mut child = spawn_load(&env);
    wait_for_copy(&env, &mut child);
    // Frozen first, so that a busy machine cannot let the load finish before the signal
    // lands: SIGINT is then delivered the moment it runs again.
    let signal = |name: &str| assert!(Command::new("kill").args([name, &child.id().to_string()]).status().unwrap().success());
    signal("-STOP");
    let copying: i64 = client()
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tier' AND query LIKE 'COPY%' AND query LIKE '%' || $1 || '%'",
            &[&env.schema],
        )
        .unwrap()
        .get(0);
    assert_eq!(copying, 1, "the load is still in COPY when stopped");
    signal("-INT");
    signal("-CONT");
    let status = child.wait().unwrap();
    assert!(!status.success());
    std::thread::sleep(Duration::from_millis(500));
    assert_untouched(&env, &before, &rejects_before);
    next_run_succeeds(&env);
}

#[test]
fn connection_killed_mid_copy_is_a_clear_error_and_keeps_the_previous_table() {
    let (env, before, rejects_before) = loaded_env("terminated");
    let mut child = spawn_load(&env);
    let pid = wait_for_copy(&env, &mut child);
    client().execute("SELECT pg_terminate_backend($1)", &[&pid]).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("weather"), "{err}");
    assert_untouched(&env, &before, &rejects_before);
    next_run_succeeds(&env);
}

#[test]
fn concurrent_loads_of_one_table_are_serialised() {
    let env = Env::new("concurrent");
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) = run(env.tier_plain(&["gen", "--events", "0", "--weather", "30000", "--seed", "2", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    let children: Vec<Child> = (0..3).map(|_| spawn_load(&env)).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let ledger = env.query_strings("SELECT status, loaded::text FROM {s}.tier_loads ORDER BY id");
    assert_eq!(ledger.len(), 3);
    // Each replace supersedes the one before it: only the last holds the table's rows.
    let statuses: Vec<_> = ledger.iter().map(|r| r[0].as_deref()).collect();
    assert_eq!(statuses, [Some("replaced"), Some("replaced"), Some("ok")]);
    let loaded: i64 = ledger[0][1].as_ref().unwrap().parse().unwrap();
    assert!(ledger.iter().all(|r| r[1] == ledger[0][1]));
    assert_eq!(env.count("weather"), loaded, "replace loads must not interleave");
}

#[test]
fn queries_during_replace_loads_see_the_old_or_the_new_table_never_an_error() {
    let env = Env::new("swapquery");
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) = run(env.tier_plain(&["gen", "--events", "0", "--weather", "20000", "--seed", "4", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(run(env.tier(&["load", "weather"])).0, 0);
    let expected = env.count("weather");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let schema = env.schema.clone();
    let flag = stop.clone();
    let reader = std::thread::spawn(move || {
        let mut c = client();
        let mut seen = 0;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let n: i64 = c
                .query_one(&format!("SELECT count(*) FROM {schema}.weather"), &[])
                .unwrap_or_else(|e| panic!("a query during the swap failed: {e}"))
                .get(0);
            assert_eq!(n, expected, "a reader saw a partial table");
            seen += 1;
        }
        seen
    });
    for _ in 0..3 {
        let (code, _, err) = run(env.tier(&["load", "weather"]));
        assert_eq!(code, 0, "{err}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 10);
    let leftovers: i64 = client()
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE '%\\_\\_tier\\_%'", &[&env.schema])
        .unwrap()
        .get(0);
    assert_eq!(leftovers, 0);
}

#[test]
fn a_view_on_the_table_makes_replace_fail_cleanly() {
    let env = Env::new("views");
    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 10:00:00", "0.5")));
    assert_eq!(run(env.tier(&["load", "weather"])).0, 0);
    client().batch_execute(&format!("CREATE VIEW {s}.oslo AS SELECT * FROM {s}.weather WHERE city = 'Oslo'", s = env.schema)).unwrap();
    let before = env.fingerprint("weather");
    let (code, _, err) = run(env.tier(&["load", "weather"]));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("view") && err.contains("--mode append"), "{err}");
    assert_eq!(env.fingerprint("weather"), before);
    assert_eq!(run(env.tier(&["load", "weather", "--mode", "append", "--force"])).0, 0);
}

#[test]
fn an_unwritable_log_directory_does_not_stop_a_load() {
    let env = Env::new("nolog");
    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 10:00:00", "0.5")));
    env.write("log", "a file where the log directory should be");
    let (code, _, err) = run(env.tier(&["load", "weather"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("not logging to"), "{err}");
    assert_eq!(env.count("weather"), 1);
}

/// The local cluster lets a test stop and start the server under a running load.
#[test]
fn server_restart_mid_load_and_a_server_that_comes_up_late() {
    let env = Env::new("restart");
    let cluster = LocalCluster::start(&env, "restart");
    let (pg, url) = (cluster.pg.clone(), cluster.url.clone());
    let db = |action: &str| cluster.db(&env, action);
    let tier = |args: &[&str]| {
        let mut c = env.tier_plain(args);
        c.args(["--database-url", &url]).env("TIER_PG_DIR", &pg);
        c
    };
    let data = env.data().to_str().unwrap().to_string();
    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 10:00:00", "0.5")));
    assert_eq!(run(tier(&["load", "weather"])).0, 0);
    let fingerprint = || {
        let mut c = connect(&url).unwrap();
        let r: String = c.query_one("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM weather t", &[]).unwrap().get(0);
        r
    };
    let before = fingerprint();
    let (code, _, err) = run(env.tier_plain(&["gen", "--events", "0", "--weather", "300000", "--seed", "1", "--out", &data]));
    assert_eq!(code, 0, "{err}");

    // Stopped mid-COPY: a clear error, the old table intact after the restart.
    let mut child = tier(&["load", "weather"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut c = connect(&url).unwrap();
        let n: i64 = c
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tier' AND query LIKE 'COPY%'", &[])
            .unwrap()
            .get(0);
        if n > 0 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the load ended before the server could be stopped");
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(db("stop").0, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert_eq!(db("start").0, 0);
    assert_eq!(fingerprint(), before, "the previous table survived the restart");

    // Refused at first, the server comes up while tier retries: the load goes through.
    assert_eq!(db("stop").0, 0);
    let child = tier(&["load", "weather"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(db("start").0, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("retrying"), "the refusals were retried: {err}");
    assert_ne!(fingerprint(), before);
    assert_eq!(db("stop").0, 0);
}

#[test]
fn a_full_disk_under_the_log_does_not_stop_or_corrupt_a_load() {
    let env = Env::new("fulldisk");
    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 10:00:00", "0.5")));
    // Every write to the log file fails with ENOSPC, as on a full disk.
    std::fs::create_dir_all(env.data().join("log")).unwrap();
    std::os::unix::fs::symlink("/dev/full", env.data().join("log/tier.log")).unwrap();
    let (code, _, err) = run(env.tier(&["-v", "load", "weather"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.count("weather"), 1);
    let (code, _, err) = run(env.tier(&["validate", "weather"]));
    assert_eq!(code, 0, "{err}");
}

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

/// A TCP proxy to the test server that forwards until `stall` is set and `after` bytes went
/// from the client to the server, then stops forwarding either way while keeping both
/// connections open: a link that dies without a word. `close` ends it.
struct Proxy {
    port: u16,
    stall: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sockets: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    fn start(upstream: (String, u16), after: u64) -> Proxy {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stall = Arc::new(AtomicBool::new(false));
        let sockets: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let (s, k) = (stall.clone(), sockets.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let server = std::net::TcpStream::connect((upstream.0.as_str(), upstream.1)).unwrap();
                k.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let sent = Arc::new(AtomicU64::new(0));
                for (mut from, mut to, counted) in
                    [(client.try_clone().unwrap(), server.try_clone().unwrap(), true), (server, client, false)]
                {
                    let (stall, sent) = (s.clone(), sent.clone());
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 << 10];
                        loop {
                            if stall.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) > after {
                                // Stalled: read nothing more, forward nothing more.
                                std::thread::sleep(Duration::from_millis(50));
                                if from.peer_addr().is_err() {
                                    return;
                                }
                                continue;
                            }
                            let n = match std::io::Read::read(&mut from, &mut buf) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if counted {
                                sent.fetch_add(n as u64, Ordering::SeqCst);
                            }
                            if std::io::Write::write_all(&mut to, &buf[..n]).is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        });
        Proxy { port, stall, sockets }
    }

    fn close(&self) {
        for s in self.sockets.lock().unwrap().iter() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn a_stalled_connection_fails_within_the_timeout_and_keeps_the_table() {
    let (env, before, rejects_before) = loaded_env("stalled");
    let (url, _, host, port) = url_with_password();
    let proxy = Proxy::start((host.clone(), port), 4 << 20);
    let through = url.replacen(&format!("{host}:{port}"), &format!("127.0.0.1:{}", proxy.port), 1);
    let mut cmd = env.tier_plain(&["load", "weather", "--database-url", &through, "--schema", &env.schema]);
    cmd.env("TIER_NET_TIMEOUT", "5");
    // Armed before the load: the link stalls once 4 MB went to the server, in the middle of
    // the COPY's data whatever this machine's pace (set once the COPY was seen, the stall
    // could come after the last byte went, while tier waits for the server's reply, which
    // no TCP timeout catches: see the note on net_timeout).
    proxy.stall.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for_copy(&env, &mut child);
    let stalled = Instant::now();
    let deadline = stalled + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            proxy.close();
            panic!("the load still hangs {:?} after the link stalled", stalled.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(4), "a database error: {err}");
    assert!(stalled.elapsed() < Duration::from_secs(60), "failed after {:?}", stalled.elapsed());
    // The server still holds the dead session's transaction: the table is as it was.
    assert_eq!(env.fingerprint("weather"), before);
    assert_eq!(env.fingerprint("weather_rejects"), rejects_before);
    proxy.close();
    // Once the server sees the link go, it rolls back, and the next run succeeds.
    let deadline = Instant::now() + Duration::from_secs(30);
    while client()
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tier' AND query LIKE 'COPY%' AND query LIKE '%' || $1 || '%'",
            &[&env.schema],
        )
        .unwrap()
        .get::<_, i64>(0)
        > 0
    {
        assert!(Instant::now() < deadline, "the server kept the stalled session");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_untouched(&env, &before, &rejects_before);
    next_run_succeeds(&env);
}

#[test]
fn too_many_clients_are_waited_for_not_failed() {
    let env = Env::new("toomany");
    let cluster = LocalCluster::start(&env, "toomany");
    let mut c = connect(&cluster.url).unwrap();
    c.batch_execute("ALTER SYSTEM SET max_connections = 6").unwrap();
    c.batch_execute("ALTER SYSTEM SET superuser_reserved_connections = 0").unwrap();
    drop(c);
    assert_eq!(cluster.db(&env, "stop").0, 0);
    let (code, url, err) = cluster.db(&env, "start");
    assert_eq!(code, 0, "{err}");
    let url = url.trim().to_string();
    let dir = env.data().join("many");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..120 {
        std::fs::write(dir.join(format!("w{i:03}.json")), format!("[{}", weather_line(&format!("City{i}"), "2019-06-04 10:00:00", "0.5")))
            .unwrap();
    }
    let mut cmd =
        env.tier_plain(&["load", "weather", "--from", dir.to_str().unwrap(), "--jobs", "8", "--database-url", &url, "--schema", "busy"]);
    cmd.env_remove("DATABASE_URL");
    let (code, _, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("too many clients"), "the server turned connections away, and they were retried: {err}");
    let mut c = connect(&url).unwrap();
    let max: String = c.query_one("SHOW max_connections", &[]).unwrap().get(0);
    assert_eq!(max, "6");
    let loaded: i64 = c.query_one("SELECT count(*) FROM busy.weather", &[]).unwrap().get(0);
    let ok: i64 = c.query_one("SELECT count(*) FROM busy.tier_loads WHERE status = 'ok'", &[]).unwrap().get(0);
    assert_eq!((loaded, ok), (120, 120));
}

/// A child process whose writes past `file_bytes` fail (EFBIG, as on a full disk) and
/// that may open at most `files` descriptors.
fn limited(cmd: &mut Command, file_bytes: u64, files: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit and signal are async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(move || {
            let size = libc::rlimit { rlim_cur: file_bytes, rlim_max: file_bytes };
            let open = libc::rlimit { rlim_cur: files, rlim_max: files };
            libc::setrlimit(libc::RLIMIT_FSIZE, &size);
            libc::setrlimit(libc::RLIMIT_NOFILE, &open);
            // A write past the size limit fails instead of killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

#[test]
fn a_full_lake_disk_is_bad_input_naming_the_lake() {
    use rand::{Rng, SeedableRng};
    let env = Env::new("fulllake");
    let dir = env.data().join("contracts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("notes.toml"),
        "name = \"notes\"\n[[column]]\nname = \"id\"\ntype = \"integer\"\n[[column]]\nname = \"text\"\ntype = \"text\"\n",
    )
    .unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let lines: Vec<String> = (0..40_000)
        .map(|i| {
            let text: String = (0..200)
                .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[rng.gen_range(0..62)]))
                .collect();
            format!("{{\"id\": {i}, \"text\": \"{text}\"}}")
        })
        .collect();
    let file = env.write("notes.json", lines.join("\n"));
    let lake = env.data().join("lake");
    let mut cmd = env.tier(&[
        "--datasets",
        dir.to_str().unwrap(),
        "load",
        "notes",
        "--from",
        file.to_str().unwrap(),
        "--lake",
        lake.to_str().unwrap(),
        "--lake-format",
        "hive",
    ]);
    limited(&mut cmd, 4 << 20, 1024);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("lake: cannot write in") && err.contains(lake.to_str().unwrap()), "{err}");
    let exists: bool = client().query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{}.notes", env.schema)]).unwrap().get(0);
    assert!(!exists || env.count("notes") == 0, "the failed load left rows");
}

#[test]
fn a_lake_of_many_days_keeps_few_files_open() {
    let env = Env::new("manydays");
    let records: Vec<String> = (0..1500)
        .map(|d| {
            let day = chrono::NaiveDate::from_ymd_opt(2015, 1, 1).unwrap() + chrono::Days::new(d);
            weather_line("Oslo", &format!("{day} 10:00:00"), "0.5")
        })
        .collect();
    env.write("weather.json", format!("[{}", records.join(",\n")));
    let lake = env.data().join("lake");
    let mut cmd = env.tier(&["load", "weather", "--lake", lake.to_str().unwrap(), "--lake-format", "hive"]);
    limited(&mut cmd, u64::MAX, 256);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.count("weather"), 1500);
    let days = std::fs::read_dir(lake.join("weather")).unwrap().count();
    assert_eq!(days, 1500);
    let lake_s = lake.to_str().unwrap();
    let rows: i64 = crate::lake::per_day(&env, lake_s, "weather").iter().map(|(_, n)| n).sum();
    assert_eq!(rows, 1500);

    // The Iceberg lake too: a file per day, every row in its snapshot.
    let iceberg = env.data().join("iceberg");
    let mut cmd = env.tier(&["load", "weather", "--lake", iceberg.to_str().unwrap()]);
    limited(&mut cmd, u64::MAX, 256);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    let data = iceberg.join(&env.schema).join("weather").join("data");
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 1500);
    let (code, out, err) = run(env.tier(&["lake", "show", "weather", "--json"]));
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown[0]["snapshots"][0]["total_records"], 1500);
}

//! Shared by the integration tests: a real PostgreSQL, a schema per test, the real binary.
//!
//! The server is `TIER_TEST_DATABASE_URL` if set, else 127.0.0.1:5432 if it answers, else a
//! throwaway cluster started with `tier db start` (which handles running as root). With
//! none of these the tests fail and say why: they never skip.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use assert_cmd::cargo::CommandCargoExt;
use postgres::{Client, NoTls};

pub fn tier_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("tier")
}

/// The server every test uses.
pub fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("TIER_TEST_DATABASE_URL") {
            return url;
        }
        let default = "postgresql://postgres@127.0.0.1:5432/postgres".to_string();
        if connect(&default).is_ok() {
            return default;
        }
        // Nothing answers: start a throwaway cluster the way users get one. A test binary
        // ends without dropping it (statics are never dropped): the clusters of runs that
        // are gone are stopped and removed first, or each run would leave a server and a
        // gigabyte behind.
        sweep_clusters_of_ended_runs();
        let dir = std::env::temp_dir().join(format!("tier-test-pg-{}", std::process::id()));
        let out = Command::cargo_bin("tier")
            .unwrap()
            .env("TIER_PG_DIR", dir.join("pg"))
            .args(["--data-dir", dir.to_str().unwrap(), "db", "start"])
            .output()
            .expect("run tier db start");
        assert!(
            out.status.success(),
            "no PostgreSQL for the tests: nothing at 127.0.0.1:5432, TIER_TEST_DATABASE_URL unset, and \
             `tier db start` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// Stops and removes the throwaway clusters (`tier-test-pg-PID`) whose test run has ended.
fn sweep_clusters_of_ended_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix("tier-test-pg-").and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        let stopped = Command::cargo_bin("tier")
            .unwrap()
            .env("TIER_PG_DIR", dir.join("pg"))
            .args(["--data-dir", dir.to_str().unwrap(), "-q", "db", "stop"])
            .output();
        if stopped.is_ok_and(|o| o.status.success()) {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Connects to a URL as tier prints it: a local cluster's URL names its password file
/// (`passfile=`, which libpq reads and the postgres crate does not).
pub fn connect(url: &str) -> Result<Client, postgres::Error> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut password = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| match p.strip_prefix("passfile=") {
            Some(file) => {
                let file = file.replace("%2F", "/").replace("%2f", "/");
                let line = std::fs::read_to_string(file).expect("the cluster's password file");
                password = line.trim().rsplit(':').next().map(str::to_string);
                false
            }
            None => !p.is_empty(),
        })
        .collect();
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    let mut config: postgres::Config = url.parse()?;
    if let Some(p) = password {
        config.password(p);
    }
    config.connect(NoTls)
}

pub fn client() -> Client {
    connect(server_url()).unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL at {}: {e}", server_url()))
}

/// A test's own schema and data directory, dropped at the end.
pub struct Env {
    pub schema: String,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new(name: &str) -> Env {
        let schema = format!("t_{}_{}", name, std::process::id());
        let mut c = client();
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).unwrap();
        Env { schema, dir: tempfile::tempdir().unwrap() }
    }

    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, file: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(file);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// `tier --data-dir DIR <args> --database-url URL --schema S`
    pub fn tier(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(tier_bin());
        cmd.arg("--data-dir").arg(self.dir.path()).args(args);
        cmd.args(["--database-url", server_url(), "--schema", &self.schema]);
        cmd.env_remove("DATABASE_URL");
        cmd
    }

    /// `tier --data-dir DIR <args>`, for commands that take no database flags.
    pub fn tier_plain(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(tier_bin());
        cmd.arg("--data-dir").arg(self.dir.path()).args(args);
        cmd
    }

    pub fn count(&self, table: &str) -> i64 {
        client().query_one(&format!("SELECT count(*) FROM {}.{table}", self.schema), &[]).unwrap().get(0)
    }

    pub fn query_strings(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let sql = sql.replace("{s}", &self.schema);
        client()
            .query(&format!("SELECT * FROM ({sql}) q"), &[])
            .unwrap()
            .iter()
            .map(|r| (0..r.len()).map(|i| r.get::<_, Option<String>>(i)).collect())
            .collect()
    }

    /// md5 of a table's contents in a fixed order: equal before and after means untouched.
    pub fn fingerprint(&self, table: &str) -> String {
        let sql = format!("SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), 'empty') FROM {}.{table} t", self.schema);
        client().query_one(&sql, &[]).unwrap().get(0)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(mut c) = connect(server_url()) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

/// Runs a command and returns (exit code, stdout, stderr).
pub fn run(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().expect("run tier");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// One weather record in the export's format.
pub fn weather_line(city: &str, time: &str, humidity: &str) -> String {
    format!(
        "{{\"weather_data.date_time\": \"{time}\", \"weather_data.city\": \"{city}\", \"weather_data.currently_humidity\": {humidity}, \
         \"weather_data.currently_precipintensity\": 0.0305, \"weather_data.currently_temperature\": 29.09}}"
    )
}

pub fn event_line(id: &str, name: &str, time: &str) -> String {
    format!(
        "{{\"segment_tracks.original_timestamp_time\": \"{time}\", \"segment_tracks.event_name\": \"{name}\", \
         \"segment_tracks.context_timezone\": \"Europe/Oslo\", \"segment_tracks.anonymous_id\": \"{id}\", \
         \"segment_tracks.received_time\": \"{time}\", \"segment_tracks.sent_time\": \"{time}\", \"segment_tracks.properties_rating\": null}}"
    )
}

/// A throwaway local cluster (`tier db`, in /tmp so the server's account can reach it),
/// for tests that stop, restart or reconfigure a server. Stopped when dropped.
pub struct LocalCluster {
    pub dir: tempfile::TempDir,
    pub pg: PathBuf,
    pub url: String,
}

impl LocalCluster {
    pub fn start(env: &Env, name: &str) -> LocalCluster {
        let dir = tempfile::Builder::new().prefix(&format!("tier-{name}-")).tempdir_in("/tmp").unwrap();
        let pg = dir.path().join("pg");
        let mut cluster = LocalCluster { dir, pg, url: String::new() };
        let (code, url, err) = cluster.db(env, "start");
        assert_eq!(code, 0, "{err}");
        cluster.url = url.trim().to_string();
        cluster
    }

    /// `tier db ACTION` for this cluster.
    pub fn db(&self, env: &Env, action: &str) -> (i32, String, String) {
        let mut c = env.tier_plain(&["db", action]);
        c.env("TIER_PG_DIR", &self.pg);
        run(c)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = Command::new(tier_bin()).args(["db", "stop"]).env("TIER_PG_DIR", &self.pg).arg("--data-dir").arg(self.dir.path()).output();
    }
}

/// Runs a command to its end, sampling its peak resident memory (VmHWM, kB) as it goes;
/// returns (exit code, stderr, peak kB). Stdout is discarded.
pub fn run_peak_rss(mut cmd: Command) -> (i32, String, u64) {
    use std::io::Read;
    let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().expect("run tier");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        // The high-water mark only grows: the last reading before the exit is the peak
        // up to a few milliseconds before it.
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kb) =
                text.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            {
                peak = peak.max(kb);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.code().unwrap_or(-1), err, peak)
}

/// A Python virtualenv with the pinned packages of `requirements` (a file under tests/),
/// made once and kept under the cargo target directory; returns its directory. Fails,
/// never skips, when it cannot be made (the packages come from PyPI).
pub fn python_venv(requirements: &str) -> PathBuf {
    static MADE: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, dir)) = made.iter().find(|(r, _)| r == requirements) {
        return dir.clone();
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(requirements);
    let pins = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    // Named by what it holds, so a change of pins makes a new one.
    let tag = format!("{:016x}", pins.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3)));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("venv-{tag}"));
    let python = dir.join("bin/python");
    if !dir.join(".complete").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&dir).status().is_ok_and(|s| s.success());
        assert!(ok, "cannot make a virtualenv at {} (python3 -m venv)", dir.display());
        let out = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&file)
            .output()
            .expect("run pip");
        assert!(out.status.success(), "pip install -r {} failed: {}", file.display(), String::from_utf8_lossy(&out.stderr));
        std::fs::write(dir.join(".complete"), &pins).unwrap();
    }
    made.push((requirements.to_string(), dir.clone()));
    dir
}

/// A contracts directory under the test's data directory holding `text` as `<name>.toml`.
pub fn contract(env: &Env, name: &str, text: &str) -> PathBuf {
    let dir = env.data().join("contracts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
    dir
}

/// The test server's URL with its password in it (a local cluster's, read from its password
/// file; none for a server that trusts the connection), the password, and its host and port.
pub fn url_with_password() -> (String, Option<String>, String, u16) {
    let (base, query) = server_url().split_once('?').unwrap_or((server_url(), ""));
    let password = query.split('&').find_map(|p| p.strip_prefix("passfile=")).map(|file| {
        let line = std::fs::read_to_string(file.replace("%2F", "/").replace("%2f", "/")).unwrap();
        line.trim().rsplit(':').next().unwrap().to_string()
    });
    let url = match &password {
        Some(p) => base.replacen("postgres@", &format!("postgres:{p}@"), 1),
        None => base.to_string(),
    };
    let authority = url.split('@').nth(1).unwrap().split('/').next().unwrap().to_string();
    let (host, port) = authority.rsplit_once(':').unwrap();
    (url.clone(), password, host.to_string(), port.parse().unwrap())
}

/// Runs a `load --json`: its exit code, the summary of its first file (null when none), stderr.
pub fn run_load(cmd: std::process::Command) -> (i32, serde_json::Value, String) {
    let (code, out, err) = run(cmd);
    let summary = serde_json::from_str::<serde_json::Value>(&out).map(|v| v[0].clone()).unwrap_or_default();
    (code, summary, err)
}

/// A jar from Maven Central (`group:artifact:version`), fetched once with curl, checked
/// against the SHA-1 Maven Central publishes for it, cached under the target directory.
pub fn maven_jar(group: &str, artifact: &str, version: &str) -> PathBuf {
    static FETCHING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = FETCHING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("maven");
    let name = format!("{artifact}-{version}.jar");
    let jar = dir.join(&name);
    if jar.exists() {
        return jar;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("https://repo1.maven.org/maven2/{}/{artifact}/{version}/{name}", group.replace('.', "/"));
    let part = dir.join(format!("{name}.part"));
    let fetched = Command::new("curl").args(["-fsSL", "--retry", "3", "-o"]).arg(&part).arg(&url).status();
    assert!(fetched.is_ok_and(|s| s.success()), "cannot fetch {url}");
    let published = Command::new("curl").args(["-fsSL", "--retry", "3", &format!("{url}.sha1")]).output().unwrap();
    assert!(published.status.success(), "cannot fetch {url}.sha1");
    let expected = String::from_utf8_lossy(&published.stdout).split_whitespace().next().unwrap_or_default().to_string();
    let sum = Command::new("sha1sum").arg(&part).output().unwrap();
    let actual = String::from_utf8_lossy(&sum.stdout).split_whitespace().next().unwrap_or_default().to_string();
    assert_eq!(actual, expected, "{url}: the download does not match its published SHA-1");
    std::fs::rename(&part, &jar).unwrap();
    jar
}

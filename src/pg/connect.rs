//! Where the database is, and connecting to it: `--database-url`, else `DATABASE_URL`,
//! else the libpq variables, else localhost:5432, else a local cluster under `data/`.

use std::time::Duration;

use anyhow::{Context, Result};
use postgres::{Client, Config, NoTls};

use crate::error::Failure;

/// A resolved connection string and where it came from (for messages).
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    DatabaseUrlEnv,
    LibpqEnv,
    Default,
    Embedded,
}

impl Origin {
    pub fn describe(self) -> &'static str {
        match self {
            Origin::Flag => "--database-url",
            Origin::DatabaseUrlEnv => "DATABASE_URL",
            Origin::LibpqEnv => "PG* environment variables",
            Origin::Default => "the default (localhost:5432)",
            Origin::Embedded => "the local cluster under the data directory",
        }
    }
}

pub const DEFAULT_URL: &str = "postgresql://postgres@localhost:5432/postgres";

/// Resolves the target without connecting. `None` for the flag means not given.
pub fn resolve(flag: Option<&str>) -> Target {
    if let Some(url) = flag.filter(|s| !s.is_empty()) {
        return Target { url: url.to_string(), origin: Origin::Flag };
    }
    if let Ok(url) = std::env::var("DATABASE_URL") {
        if !url.is_empty() {
            return Target { url, origin: Origin::DatabaseUrlEnv };
        }
    }
    if let Some(url) = from_libpq_env(|k| std::env::var(k).ok().filter(|v| !v.is_empty())) {
        return Target { url, origin: Origin::LibpqEnv };
    }
    // TIER_DEFAULT_URL moves the default (the tests point it at a dead port to exercise
    // the fallback to the local cluster).
    let url = std::env::var("TIER_DEFAULT_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| DEFAULT_URL.to_string());
    Target { url, origin: Origin::Default }
}

/// Builds a URL from `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, if any is set.
fn from_libpq_env(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    let vars = ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"].map(&get);
    if vars.iter().all(Option::is_none) {
        return None;
    }
    let [host, port, user, password, db] = vars;
    let host = host.unwrap_or_else(|| "localhost".into());
    let user = user.unwrap_or_else(|| "postgres".into());
    let db = db.unwrap_or_else(|| user.clone());
    let port = port.unwrap_or_else(|| "5432".into());
    let auth = match password {
        Some(p) => format!("{}:{}", encode(&user), encode(&p)),
        None => encode(&user),
    };
    Some(if host.starts_with('/') {
        // A socket directory goes in the query string.
        format!("postgresql://{auth}@localhost:{port}/{}?host={}", encode(&db), encode(&host))
    } else {
        format!("postgresql://{auth}@{host}:{port}/{}", encode(&db))
    })
}

/// The URL with any password replaced by `***`, for logs and messages.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    // user:password@ in a URL's authority
    if let Some(scheme_end) = out.find("://") {
        let auth_start = scheme_end + 3;
        let rest = &out[auth_start..];
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                out.replace_range(auth_start + colon + 1..auth_start + at, "***");
            }
        }
    }
    // password=... in a query string or a key=value connection string
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(pos) = rest.find("password=") {
        let boundary_ok = pos == 0 || matches!(rest.as_bytes()[pos - 1], b'?' | b'&' | b' ');
        result.push_str(&rest[..pos + 9]);
        rest = &rest[pos + 9..];
        if boundary_ok {
            let end = rest.find(['&', ' ']).unwrap_or(rest.len());
            result.push_str("***");
            rest = &rest[end..];
        }
    }
    result.push_str(rest);
    result
}

/// Whether an error means the server is not there (refused, reset, unreachable, timed
/// out) or cannot take the connection yet, as opposed to one that answered with a refusal
/// of its own.
pub fn is_transient(err: &postgres::Error) -> bool {
    if err.as_db_error().is_some() {
        // 57P03: the server is starting up or shutting down; 53300: too many clients (a
        // slot frees when another connection ends).
        return err.code().is_some_and(|c| matches!(c.code(), "57P03" | "53300"));
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(io.kind(), ConnectionRefused | ConnectionReset | ConnectionAborted | TimedOut | NotFound | BrokenPipe);
        }
        source = e.source();
    }
    err.is_closed() || err.to_string().contains("timed out")
}

/// How long an unacknowledged write or an unanswered link may last before the connection
/// counts as lost (`TIER_NET_TIMEOUT` seconds): a proxy that stops forwarding mid-COPY
/// would otherwise hang a load for ever. A proxy that stalls once every byte sent was
/// acknowledged, while tier waits for an answer, still answers the keepalives: that
/// silence looks like a long statement, and is waited out.
pub fn net_timeout() -> Duration {
    let seconds = std::env::var("TIER_NET_TIMEOUT").ok().and_then(|s| s.parse::<u64>().ok()).filter(|s| *s > 0).unwrap_or(60);
    Duration::from_secs(seconds)
}

/// A server with no free connection slot (53300) is asked again for this long.
const BUSY_PATIENCE: Duration = Duration::from_secs(120);

/// Connects, retrying transient failures `attempts` times with growing pauses (and a
/// server with no free connection slot for up to two minutes: loads running side by side
/// take turns).
pub fn connect(target: &Target, attempts: u32) -> Result<Client> {
    let tls = super::tls::settings(&target.url)?;
    let mut config = parse_config(&tls)?;
    let connector = tls.connector()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    config.application_name("tier");
    let mut pause = Duration::from_millis(250);
    let started = std::time::Instant::now();
    let mut attempt = 0;
    let e = loop {
        attempt += 1;
        let attempt_result = match &connector {
            Some(c) => config.connect(c.clone()),
            None => config.connect(NoTls),
        };
        let busy = |e: &postgres::Error| e.code().is_some_and(|c| c.code() == "53300") && started.elapsed() < BUSY_PATIENCE;
        match attempt_result {
            Ok(client) => return Ok(client),
            Err(e) if is_transient(&e) && (attempt < attempts.max(1) || busy(&e)) => {
                tracing::warn!("cannot connect to {} (attempt {attempt}): {}; retrying", redact(&target.url), describe(&e));
                // Jittered, so that loads waiting for a slot do not all ask at once.
                let jitter = Duration::from_millis(rand::random::<u64>() % 250);
                std::thread::sleep(pause + jitter);
                pause = (pause * 2).min(Duration::from_secs(4));
            }
            Err(e) => break e,
        }
    };
    Err(Failure::Database(format!(
        "cannot connect to PostgreSQL at {} (from {}): {}",
        redact(&target.url),
        target.origin.describe(),
        describe(&e)
    ))
    .into())
}

/// rust-postgres' config for a URL whose TLS options `tls::settings` took out. Without a
/// password in the URL, one is looked up in the libpq password file (`passfile=` in the
/// URL, `PGPASSFILE` or `~/.pgpass`), which rust-postgres does not read by itself.
pub fn parse_config(tls: &super::tls::Settings) -> Result<Config> {
    let (url, passfile) = take_param(&tls.url, "passfile");
    let mut config: Config = url.parse().map_err(|e| Failure::Database(format!("invalid connection string {}: {e}", redact(&url))))?;
    config.ssl_mode(tls.ssl_mode());
    // A link that dies silently (a stalled proxy, a dropped route) fails the connection
    // within about `net_timeout`: keepalives probe an idle link, and the kernel gives up
    // on data the other side never acknowledges.
    let timeout = net_timeout();
    config.keepalives(true);
    config.keepalives_idle(timeout / 2);
    config.keepalives_interval((timeout / 6).max(Duration::from_secs(1)));
    config.keepalives_retries(3);
    config.tcp_user_timeout(timeout);
    if config.get_password().is_none() {
        if let Some(file) = super::passfile::path(passfile.as_deref()) {
            let host = match config.get_hosts().first() {
                Some(postgres::config::Host::Tcp(h)) => h.clone(),
                Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
                None => "localhost".to_string(),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            let user = config.get_user().unwrap_or("postgres").to_string();
            let database = config.get_dbname().unwrap_or(&user).to_string();
            if let Some(password) = super::passfile::lookup(&file, &host, port, &database, &user) {
                config.password(password);
            }
        }
    }
    Ok(config)
}

/// The URL without one query parameter, and that parameter's (percent-decoded) value.
fn take_param(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), None) };
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((k, v)) if k == name => {
                value = Some(super::tls::percent_decode(v));
                false
            }
            _ => !pair.is_empty(),
        })
        .collect();
    (if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) }, value)
}

/// Percent-encodes a value for a URL (everything but unreserved characters).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A postgres error with its server message, detail and position where there is one.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            s
        }
    }
}

/// Runs SQL, turning a failure into a database error that says what was being done.
pub fn exec(client: &mut Client, what: &str, sql: &str) -> Result<()> {
    client
        .batch_execute(sql)
        .map_err(|e| Failure::Database(format!("{what}: {}", describe(&e))))
        .with_context(|| format!("while running: {}", first_line(sql)))
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or("")
}

/// Whether `schema.table` exists.
pub fn table_exists(client: &mut Client, schema: &str, table: &str) -> Result<bool> {
    let name = format!("{}.{}", ident(schema), ident(table));
    let row = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&name]).map_err(|e| Failure::Database(describe(&e)))?;
    Ok(row.get(0))
}

/// Quotes an identifier for SQL (schema and table names come from the command line).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A text as an SQL string literal, for statements tier writes itself (names, a check's
/// text): an escape string, whose backslashes mean the same whatever the server's
/// `standard_conforming_strings` says.
pub fn text_literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_literal_cannot_end_early() {
        assert_eq!(text_literal("plain"), "E'plain'");
        assert_eq!(text_literal(r"it's \' x"), r"E'it''s \\'' x'");
    }

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(redact("postgresql://u:s3cret@h:5432/db"), "postgresql://u:***@h:5432/db");
        assert_eq!(redact("postgresql://u:p%40ss@h/db?sslmode=require"), "postgresql://u:***@h/db?sslmode=require");
        assert_eq!(redact("postgresql://u@h/db?password=x&sslmode=require"), "postgresql://u@h/db?password=***&sslmode=require");
        assert_eq!(redact("host=h password=x user=u"), "host=h password=*** user=u");
        assert_eq!(redact("postgresql://h/db"), "postgresql://h/db");
    }

    #[test]
    fn libpq_variables_build_a_url() {
        let env =
            |pairs: &'static [(&'static str, &'static str)]| move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        assert_eq!(from_libpq_env(env(&[])), None);
        assert_eq!(from_libpq_env(env(&[("PGHOST", "db.example")])).unwrap(), "postgresql://postgres@db.example:5432/postgres");
        assert_eq!(
            from_libpq_env(env(&[("PGHOST", "h"), ("PGUSER", "tier"), ("PGPASSWORD", "p@ss"), ("PGDATABASE", "tier"), ("PGPORT", "6543")]))
                .unwrap(),
            "postgresql://tier:p%40ss@h:6543/tier"
        );
        assert_eq!(
            from_libpq_env(env(&[("PGHOST", "/run/pg")])).unwrap(),
            "postgresql://postgres@localhost:5432/postgres?host=%2Frun%2Fpg"
        );
    }

    #[test]
    fn passfile_leaves_the_url() {
        let (url, file) = take_param("postgresql://u@h/db?passfile=%2Ftmp%2Fpg%20pass&application_name=x", "passfile");
        assert_eq!(url, "postgresql://u@h/db?application_name=x");
        assert_eq!(file.as_deref(), Some("/tmp/pg pass"));
        assert_eq!(take_param("postgresql://u@h/db?passfile=x", "passfile").0, "postgresql://u@h/db");
        assert_eq!(take_param("postgresql://u@h/db", "passfile"), ("postgresql://u@h/db".to_string(), None));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("weather"), "\"weather\"");
        assert_eq!(ident("a\"; drop table x; --"), "\"a\"\"; drop table x; --\"");
    }
}

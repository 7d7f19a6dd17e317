//! A project-local PostgreSQL cluster under the data directory, started from the
//! installed server binaries when nothing else is configured or answering.
//!
//! PostgreSQL refuses to run as root. When tier runs as root (CI, containers), the
//! cluster directory is handed to an unprivileged account (`postgres` if it exists, else
//! `nobody`) and `initdb` / `pg_ctl` run as that account.
//!
//! The cluster has a generated superuser password (scram-sha-256), kept in the cluster
//! directory in a password file of mode 0600 that its URL names; nothing prints it.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result};

use super::connect::encode;
use super::passfile;
use crate::error::Failure;

pub struct Cluster {
    pub dir: PathBuf,
}

const PORT_FILE: &str = "tier.port";
/// The superuser's password, in libpq's password file format, mode 0600.
const PASSWORD_FILE: &str = "tier.pgpass";

impl Cluster {
    /// The cluster for a data directory (`DATA_DIR/pg`), or `TIER_PG_DIR` when set.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        let dir = std::env::var_os("TIER_PG_DIR").map(PathBuf::from).unwrap_or_else(|| data_dir.join("pg"));
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Cluster { dir }
    }

    pub fn is_initialised(&self) -> bool {
        self.dir.join("PG_VERSION").exists()
    }

    pub fn port(&self) -> Option<u16> {
        std::fs::read_to_string(self.dir.join(PORT_FILE)).ok()?.trim().parse().ok()
    }

    /// The cluster's URL. It carries no password: it names the cluster's password file
    /// (`passfile`, as libpq reads it), so printing it gives nothing away and psql accepts it.
    pub fn url(&self) -> Option<String> {
        let port = self.port()?;
        let passfile = self.dir.join(PASSWORD_FILE);
        Some(match passfile.exists() {
            true => format!("postgresql://postgres@127.0.0.1:{port}/postgres?passfile={}", encode(&passfile.display().to_string())),
            // A cluster made before clusters had passwords.
            false => format!("postgresql://postgres@127.0.0.1:{port}/postgres"),
        })
    }

    pub fn is_running(&self) -> Result<bool> {
        if !self.is_initialised() {
            return Ok(false);
        }
        let bin = bindir()?;
        let out = self.run_as_owner(Command::new(bin.join("pg_ctl")).arg("-D").arg(&self.dir).arg("status"))?;
        Ok(out.status.success())
    }

    /// Creates the cluster if needed and starts it; returns its URL.
    pub fn start(&self) -> Result<String> {
        let bin = bindir()?;
        if !self.is_initialised() {
            self.init(&bin)?;
        }
        if !self.is_running()? {
            let port = self.port().ok_or_else(|| self.no_port_file())?;
            let log = self.dir.join("server.log");
            let options = format!("-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''");
            let out = self.run_as_owner(
                Command::new(bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(&self.dir)
                    .arg("-l")
                    .arg(&log)
                    .args(["-o", &options, "-w", "-t", "60", "start"]),
            )?;
            if !out.status.success() {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                return Err(Failure::NoPostgres(format!(
                    "could not start the local PostgreSQL cluster in {}: {}{}",
                    self.dir.display(),
                    String::from_utf8_lossy(&out.stderr).trim(),
                    tail.iter().rev().map(|l| format!("\n  {l}")).collect::<String>()
                ))
                .into());
            }
            tracing::info!("started local PostgreSQL in {} on port {port}", self.dir.display());
        }
        Ok(self.url().ok_or_else(|| self.no_port_file())?)
    }

    pub fn stop(&self) -> Result<bool> {
        if !self.is_running()? {
            return Ok(false);
        }
        let bin = bindir()?;
        let out = self.run_as_owner(Command::new(bin.join("pg_ctl")).arg("-D").arg(&self.dir).args(["-m", "fast", "-w", "stop"]))?;
        if !out.status.success() {
            return Err(Failure::Database(format!(
                "pg_ctl stop failed in {}: {}",
                self.dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
            .into());
        }
        Ok(true)
    }

    fn init(&self, bin: &Path) -> Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        if let Some(user) = service_user()? {
            check_reachable(&self.dir, &user)?;
            std::os::unix::fs::chown(&self.dir, Some(user.uid), Some(user.gid))
                .with_context(|| format!("cannot hand {} to user {}", self.dir.display(), user.name))?;
        }
        // A generated password and scram-sha-256, never trust: the server listens on a TCP
        // port any local user could reach. initdb reads the password from a file only the
        // server's account can read, removed right after; the data directory must be empty.
        let password: String =
            rand::Rng::sample_iter(rand::rngs::OsRng, &rand::distributions::Alphanumeric).take(32).map(char::from).collect();
        let pwfile = tempfile::NamedTempFile::new().context("cannot create a temporary file for initdb's password")?;
        std::fs::write(pwfile.path(), &password)?;
        if let Some(user) = service_user()? {
            std::os::unix::fs::chown(pwfile.path(), Some(user.uid), Some(user.gid))?;
        }
        let out = self.run_as_owner(
            Command::new(bin.join("initdb"))
                .arg("-D")
                .arg(&self.dir)
                .args(["-U", "postgres", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions"])
                .arg(format!("--pwfile={}", pwfile.path().display())),
        )?;
        drop(pwfile);
        if !out.status.success() {
            return Err(Failure::NoPostgres(format!(
                "initdb failed in {}: {}",
                self.dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
            .into());
        }
        // Pick a free port once; it is kept with the cluster.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let port_file = self.dir.join(PORT_FILE);
        std::fs::write(&port_file, port.to_string())?;
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(self.dir.join(PASSWORD_FILE))?;
        file.write_all(passfile::line("127.0.0.1", port, "postgres", &password).as_bytes())?;
        tracing::info!("created local PostgreSQL cluster in {}", self.dir.display());
        Ok(())
    }

    fn no_port_file(&self) -> Failure {
        Failure::NoPostgres(format!(
            "{}: the cluster has no {PORT_FILE} file; remove the directory to create a new cluster",
            self.dir.display()
        ))
    }

    fn run_as_owner(&self, cmd: &mut Command) -> Result<Output> {
        if let Some(user) = service_user()? {
            cmd.uid(user.uid).gid(user.gid).env("HOME", &self.dir).current_dir(&self.dir);
        }
        cmd.output().with_context(|| format!("cannot run {:?}", cmd.get_program()))
    }
}

/// The PostgreSQL server binaries: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`, else `initdb` on the PATH.
pub fn bindir() -> Result<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p): &(u32, PathBuf)| p.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
            return Ok(dir);
        }
    }
    Err(Failure::NoPostgres(
        "no PostgreSQL is configured or answering, and no PostgreSQL server binaries (initdb, pg_ctl) \
         were found to start one. Either point tier at a server (--database-url or DATABASE_URL), or \
         install the server: Debian/Ubuntu `apt-get install postgresql`, Fedora `dnf install \
         postgresql-server`, macOS `brew install postgresql@15`"
            .into(),
    )
    .into())
}

struct User {
    name: String,
    uid: u32,
    gid: u32,
}

/// The account to run the server as when we are root; `None` when we are not root.
fn service_user() -> Result<Option<User>> {
    let euid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    if euid != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let users: Vec<User> = passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3).then(|| Some(User { name: f[0].to_string(), uid: f[2].parse().ok()?, gid: f[3].parse().ok()? }))?
        })
        .collect();
    for name in ["postgres", "nobody"] {
        if let Some(u) = users.iter().find(|u| u.name == name) {
            return Ok(Some(User { name: u.name.clone(), uid: u.uid, gid: u.gid }));
        }
    }
    Err(Failure::NoPostgres(
        "running as root, and PostgreSQL refuses to run as root; no `postgres` or `nobody` account exists \
         to run it as. Create one (useradd postgres) or point tier at a server with --database-url"
            .into(),
    )
    .into())
}

/// The service account must be able to walk down to the cluster directory.
fn check_reachable(dir: &Path, user: &User) -> Result<()> {
    for ancestor in dir.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(ancestor) else { continue };
        let mode = meta.mode();
        let ok = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !ok {
            return Err(Failure::NoPostgres(format!(
                "running as root, PostgreSQL must run as user {}, who cannot enter {}. \
                 Set TIER_PG_DIR to a directory it can reach (for example /tmp/tier-pg), or point \
                 tier at a server with --database-url",
                user.name,
                ancestor.display()
            ))
            .into());
        }
    }
    Ok(())
}

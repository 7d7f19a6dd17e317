//! A project-local PostgreSQL cluster under the data directory, started from the
//! installed server binaries when nothing else is configured or answering.
//!
//! PostgreSQL refuses to run as root. When tier runs as root (CI, containers), the
//! cluster directory is handed to an unprivileged account (`postgres` if it exists, else
//! `nobody`) and `initdb` / `pg_ctl` run as that account.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result};

use crate::error::Failure;

pub struct Cluster {
    pub dir: PathBuf,
}

const PORT_FILE: &str = "tier.port";

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

    pub fn url(&self) -> Option<String> {
        self.port().map(|p| format!("postgresql://postgres@127.0.0.1:{p}/postgres"))
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
            let port = self.port().context("the cluster has no port file")?;
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
        self.url().context("the cluster has no port file")
    }

    pub fn stop(&self) -> Result<bool> {
        if !self.is_running()? {
            return Ok(false);
        }
        let bin = bindir()?;
        let out = self.run_as_owner(Command::new(bin.join("pg_ctl")).arg("-D").arg(&self.dir).args(["-m", "fast", "-w", "stop"]))?;
        if !out.status.success() {
            anyhow::bail!("pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr).trim());
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
        let out = self.run_as_owner(Command::new(bin.join("initdb")).arg("-D").arg(&self.dir).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
        ]))?;
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
        tracing::info!("created local PostgreSQL cluster in {}", self.dir.display());
        Ok(())
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

//! Passwords from a libpq password file (`~/.pgpass`, `PGPASSFILE`, or `passfile=` in the
//! connection string), so a URL can name a server without carrying its password: the
//! local cluster's URL points at its own password file, and psql reads the same URL.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The password file to consult: the URL's `passfile`, else `PGPASSFILE`, else `~/.pgpass`.
pub fn path(explicit: Option<&str>) -> Option<PathBuf> {
    if let Some(p) = explicit.filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass"))
}

/// The password of the first line that matches, as libpq reads the file: fields
/// `host:port:database:user:password`, `*` matching anything, `\` escaping `:` and `\`.
/// A file that others can read is ignored, as libpq ignores it.
pub fn lookup(file: &Path, host: &str, port: u16, database: &str, user: &str) -> Option<String> {
    let meta = std::fs::metadata(file).ok()?;
    if !meta.is_file() {
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!("password file {} has group or world access; ignored (chmod 0600 it)", file.display());
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    let port = port.to_string();
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let fields = split(line);
        let [h, p, d, u, password] = fields.as_slice() else { return None };
        let matches = |pattern: &String, value: &str| pattern == "*" || pattern == value;
        (matches(h, host) && matches(p, &port) && matches(d, database) && matches(u, user)).then(|| password.clone())
    })
}

/// One line, split on unescaped colons, escapes removed.
fn split(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().expect("one field").extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

/// A password file line for one server and user (escaped as `lookup` reads it).
pub fn line(host: &str, port: u16, user: &str, password: &str) -> String {
    let escape = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
    format!("{}:{port}:*:{}:{}\n", escape(host), escape(user), escape(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_as_libpq_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        let text =
            format!("# comment\nother:5432:*:postgres:nope\n{}*:*:db\\:x:*:second\n", line("127.0.0.1", 6543, "postgres", "p:a\\ss"));
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(lookup(&file, "127.0.0.1", 6543, "postgres", "postgres").as_deref(), Some("p:a\\ss"));
        assert_eq!(lookup(&file, "127.0.0.1", 5432, "db:x", "u").as_deref(), Some("second"));
        assert_eq!(lookup(&file, "127.0.0.1", 5432, "postgres", "u"), None);
        // Readable by others: ignored, as libpq ignores it.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(lookup(&file, "127.0.0.1", 6543, "postgres", "postgres"), None);
    }
}

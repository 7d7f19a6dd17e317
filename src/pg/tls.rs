//! `sslmode` as libpq means it, for both connection paths (the writer's `postgres` client
//! and connectorx's readers), which get the same connector from here.
//!
//! rust-postgres parses only disable / prefer / require, and verifies nothing on its own;
//! connectorx panics on verify-ca / verify-full. So the TLS options are taken out of the
//! URL here and turned into an OpenSSL connector that verifies what the mode says:
//!
//! | sslmode | encrypted | server certificate checked against the CA | host name checked |
//! |---|---|---|---|
//! | (none), disable | no | - | - |
//! | allow, prefer | if the server offers it | no | no |
//! | require | yes | only if `sslrootcert` is given (as libpq) | no |
//! | verify-ca | yes | yes | no |
//! | verify-full | yes | yes | yes |
//!
//! Without `sslmode` tier does not encrypt (libpq would try to): loads on one machine stay
//! fast, and a load over a network says `sslmode=require` or stricter.

use std::path::PathBuf;

use anyhow::Result;
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use postgres::config::SslMode;
use postgres_openssl::MakeTlsConnector;

use crate::error::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A connection string split into what rust-postgres understands and the TLS settings.
pub struct Settings {
    /// The URL without sslmode / sslrootcert / sslcert / sslkey.
    pub url: String,
    pub mode: Mode,
    root_cert: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
}

const TLS_PARAMS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

pub fn settings(url: &str) -> Result<Settings> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut get = std::collections::HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if TLS_PARAMS.contains(&k) {
            get.insert(k.to_string(), percent_decode(v));
        } else {
            kept.push(pair);
        }
    }
    let mode = match get.get("sslmode").map(String::as_str) {
        None | Some("disable") => Mode::Off,
        Some("allow") | Some("prefer") => Mode::Prefer,
        Some("require") => Mode::Require,
        Some("verify-ca") => Mode::VerifyCa,
        Some("verify-full") => Mode::VerifyFull,
        Some(other) => {
            return Err(
                Failure::Database(format!("sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full")).into()
            )
        }
    };
    let mut root_cert = get.get("sslrootcert").map(PathBuf::from);
    if root_cert.is_none() && matches!(mode, Mode::VerifyCa | Mode::VerifyFull) {
        // libpq's default place for the CA.
        let default = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt"));
        match default.filter(|p| p.exists()) {
            Some(p) => root_cert = Some(p),
            None => {
                return Err(Failure::Database(
                    "sslmode=verify-ca/verify-full needs the server's CA: add sslrootcert=/path/to/root.crt to the URL (or put it in ~/.postgresql/root.crt)".into(),
                )
                .into())
            }
        }
    }
    let client_cert = match (get.get("sslcert"), get.get("sslkey")) {
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        _ => None,
    };
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    Ok(Settings { url, mode, root_cert, client_cert })
}

impl Settings {
    /// The mode to give rust-postgres' config.
    pub fn ssl_mode(&self) -> SslMode {
        match self.mode {
            Mode::Off => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        }
    }

    /// The connector for this mode, or `None` for plain connections.
    pub fn connector(&self) -> Result<Option<MakeTlsConnector>> {
        if self.mode == Mode::Off {
            return Ok(None);
        }
        let tls_error = |e: openssl::error::ErrorStack| Failure::Database(format!("TLS setup failed: {e}"));
        let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(tls_error)?;
        if let Some(ca) = &self.root_cert {
            builder.set_ca_file(ca).map_err(|e| Failure::Database(format!("cannot read sslrootcert {}: {e}", ca.display())))?;
        }
        if let Some((cert, key)) = &self.client_cert {
            builder.set_certificate_file(cert, SslFiletype::PEM).map_err(tls_error)?;
            builder.set_private_key_file(key, SslFiletype::PEM).map_err(tls_error)?;
        }
        let verify_ca = match self.mode {
            Mode::VerifyCa | Mode::VerifyFull => true,
            Mode::Require => self.root_cert.is_some(),
            _ => false,
        };
        if !verify_ca {
            builder.set_verify(SslVerifyMode::NONE);
        }
        let mut connector = MakeTlsConnector::new(builder.build());
        if self.mode != Mode::VerifyFull {
            connector.set_callback(|config, _| {
                config.set_verify_hostname(false);
                Ok(())
            });
        }
        Ok(Some(connector))
    }
}

pub fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(byte) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_leave_the_url() {
        let s = settings("postgresql://u@h:5432/db?sslmode=require&application_name=x&sslrootcert=%2Ftmp%2Fca.crt").unwrap();
        assert_eq!(s.url, "postgresql://u@h:5432/db?application_name=x");
        assert_eq!(s.mode, Mode::Require);
        assert_eq!(s.root_cert, Some(PathBuf::from("/tmp/ca.crt")));
        assert_eq!(settings("postgresql://h/db").unwrap().mode, Mode::Off);
        assert_eq!(settings("postgresql://h/db?sslmode=prefer").unwrap().ssl_mode(), SslMode::Prefer);
        assert!(settings("postgresql://h/db?sslmode=sometimes").is_err());
        let full = settings("postgresql://h/db?sslmode=verify-full&sslrootcert=/x").unwrap();
        assert_eq!((full.mode, full.ssl_mode()), (Mode::VerifyFull, SslMode::Require));
    }
}

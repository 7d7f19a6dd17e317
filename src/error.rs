//! One place that maps failures to exit codes (documented in `--help` and docs/commands.md).

use std::process::ExitCode;

/// Exit codes. Anything not listed is a bug (70).
pub const EXIT_OK: u8 = 0;
pub const EXIT_DIFFERENCES: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INPUT: u8 = 3;
pub const EXIT_DATABASE: u8 = 4;
pub const EXIT_NO_POSTGRES: u8 = 5;
pub const EXIT_INTERNAL: u8 = 70;

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  validate: source and database differ; lake check: the lake and the database differ;
     check: a declared check failed (--strict: or warned)
  2  bad command line
  3  bad input: a file missing, unreadable or empty, a directory where a file belongs, an
     unwritable temporary directory, too many rejected rows, a declared check failing at
     load, already loaded
  4  database error: cannot connect, COPY or SQL failed (the previous tables are kept)
  5  no PostgreSQL configured or reachable, and none could be started locally
  70 internal error (a bug: please report it)";

/// A failure that knows its exit code. Wrap causes with `anyhow::Context` as usual; the
/// outermost `Failure` in the chain decides the code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Differences(String),
    #[error("{0}")]
    Input(String),
    /// An append of a file the ledger already holds (a multi-file load skips it).
    #[error("{0}")]
    AlreadyLoaded(String),
    #[error("{0}")]
    Database(String),
    #[error("{0}")]
    NoPostgres(String),
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Differences(_) => EXIT_DIFFERENCES,
            Failure::Input(_) | Failure::AlreadyLoaded(_) => EXIT_INPUT,
            Failure::Database(_) => EXIT_DATABASE,
            Failure::NoPostgres(_) => EXIT_NO_POSTGRES,
        }
    }
}

/// The exit code for an error chain; `is_database` tells the database driver's own errors
/// (main passes `pg::is_error`, so this foundation names no layer above it).
pub fn exit_code(err: &anyhow::Error, is_database: fn(&(dyn std::error::Error + 'static)) -> bool) -> ExitCode {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return ExitCode::from(f.code());
        }
        if is_database(cause) {
            return ExitCode::from(EXIT_DATABASE);
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return ExitCode::from(EXIT_INPUT);
        }
    }
    ExitCode::from(EXIT_INTERNAL)
}

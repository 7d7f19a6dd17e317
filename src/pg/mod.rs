//! Everything that talks to PostgreSQL through the `postgres` crate: connecting, the
//! local cluster, binary COPY in (the load transaction) and out (exports), CSV exports,
//! and validate's figures of a table. (Other reads for query/report go through
//! connectorx, in `read`.)

pub mod catalog;
pub mod checks;
pub mod connect;
pub mod copy;
pub mod ddl;
pub mod embedded;
pub mod export;
pub mod frames;
pub mod keyed;
pub mod lake_catalog;
pub mod ledger;
pub mod load;
pub mod merge;
pub mod passfile;
pub mod quote;
pub mod read;
pub mod spool;
pub mod tls;
pub mod validation;

/// A connection, as the stages that hold one (a load's writer, validate) pass it around,
/// and its error.
pub use postgres::{Client, Error};

/// Whether an error is the driver's (main maps it to the database's exit code).
pub fn is_error(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<Error>().is_some()
}

use std::path::Path;

use anyhow::Result;

use connect::{Origin, Target};

/// Finds a database to use: the configured one, or, when nothing is configured and
/// nothing answers on localhost:5432, the local cluster (started if needed).
pub fn reach(flag: Option<&str>, data_dir: &Path) -> Result<Target> {
    let target = connect::resolve(flag);
    if target.origin != Origin::Default {
        return Ok(target);
    }
    match connect::connect(&target, 1) {
        Ok(_) => Ok(target),
        Err(e) => {
            tracing::info!("nothing configured and {}; using the local cluster", e);
            let cluster = embedded::Cluster::for_data_dir(data_dir);
            let url = cluster.start()?;
            Ok(Target { url, origin: Origin::Embedded })
        }
    }
}

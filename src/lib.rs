//! tier: load messy event exports into PostgreSQL, prove the load is right, look at it.
//!
//! Modules in the order data moves through them:
//! `source` (files -> chunks of records) -> `transform` (records -> text frames)
//! -> `quality` (casts by `values`, rules, rejects; `dedupe`: duplicates) -> `pg` (binary COPY into staging, atomic
//! swap). `pipeline` runs those stages side by side for one file; `cmd` holds one file
//! per command.

pub mod checks;
pub mod children;
pub mod cli;
pub mod cmd;
pub mod context;
pub mod contract;
pub mod dataset;
pub mod dedupe;
pub mod error;
pub mod evolve;
pub mod figures;
pub mod frame;
pub mod gen;
pub mod hash;
pub mod infer;
pub mod jobs;
pub mod lake;
pub mod logging;
pub mod pg;
pub mod pipeline;
pub mod progress;
pub mod quality;
pub mod reasons;
pub mod render;
pub mod rows;
pub mod sample;
pub mod search;
pub mod source;
pub mod sql;
pub mod stats;
pub mod transform;
pub mod validate;
pub mod values;

/// The properties the fuzz target checks, replayed over its corpus by `cargo test`.
#[cfg(test)]
#[path = "../fuzz/check_records.rs"]
mod check_records;

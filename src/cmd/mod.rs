//! One file per command: each takes its parsed arguments and returns a result; `main`
//! turns that into an exit code.

pub mod db;
pub mod demo;
pub mod gen;
pub mod load;
pub mod query;
pub mod report;
pub mod validate;

//! One integration test binary: drives the real `tier` executable against a real
//! PostgreSQL, each test in its own schema.

mod airflow;
mod attacks;
mod checks;
mod common;
mod contracts;
mod correctness;
mod db;
mod docker;
mod docs;
mod evolve;
mod exports;
mod faults;
mod hostile;
mod iceberg;
mod kafka;
mod lake;
mod load;
mod many;
mod merge;
mod objects;
mod query;
mod report;
mod security;
mod soak;
mod split;
mod validate;

//! tier: load messy event exports into PostgreSQL, prove the load is right, look at it.
//!
//! Modules in the order data moves through them:
//! `source` (files -> chunks of records) -> `transform` (records -> text frames, casts)
//! -> `quality` (rules, rejects, duplicates) -> `pg` (binary COPY into staging, atomic swap).

pub mod dataset;
pub mod quality;
pub mod source;
pub mod transform;

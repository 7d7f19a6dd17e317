//! Values from text as PostgreSQL's own input functions read them: integers, floats,
//! numerics and booleans, timestamps and dates (in every `format` a contract names), JSON.
//! A foundation: no I/O, nothing of tier above it.

pub mod json;
pub mod number;
pub mod timestamp;

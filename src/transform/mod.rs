//! Records -> typed frames: parsing every field as text, and the casts from text that
//! must agree with PostgreSQL's own input functions (numbers, timestamps). The rules live in `quality`.

pub mod json;
pub mod number;
pub mod parse;
pub mod record;
pub mod timestamp;

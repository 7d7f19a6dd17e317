//! Records -> typed frames: parsing every field as text, and the timestamp cast Polars'
//! strptime cannot do for mixed formats. The rules live in `quality`.

pub mod parse;
pub mod record;
pub mod timestamp;

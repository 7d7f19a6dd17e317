//! Records -> text columns: each record's fields as text cells, gathered into a frame of
//! text columns. The casts (`values`) and the rules (`quality`) come after.

pub mod elements;
pub mod parse;
pub mod record;
pub mod route;

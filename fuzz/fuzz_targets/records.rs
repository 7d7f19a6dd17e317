//! Arbitrary bytes through the framing scanner and both record parsers.
#![no_main]
#![allow(dead_code)]

use libfuzzer_sys::fuzz_target;

#[path = "../check_records.rs"]
mod check_records;
#[path = "../../src/dataset.rs"]
pub mod dataset;
#[path = "../../src/source/framing.rs"]
pub mod framing;
#[path = "../../src/transform/record.rs"]
pub mod record;
#[path = "../../src/values/number.rs"]
pub mod number;
#[path = "../../src/values/timestamp.rs"]
pub mod timestamp;
#[path = "../../src/search.rs"]
pub mod search;
#[path = "../../src/reasons.rs"]
pub mod reasons;

// The module paths tier's own sources use.
mod source {
    pub use super::framing;
}
mod transform {
    pub use super::record;
}
mod values {
    pub use super::{number, timestamp};
}

fuzz_target!(|data: &[u8]| {
    check_records::check(data);
});

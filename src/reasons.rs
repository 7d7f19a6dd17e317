//! Why a record is rejected: the reasons stored in `<table>_rejects.reason`, in rule order
//! (see `quality` for the rules, `dedupe` for the last two).

/// Not a JSON object (garbage, a truncated record, invalid UTF-8, a duplicate key).
pub const MALFORMED: &str = "malformed";
/// An object or array where a scalar belongs, a NUL in text, a value jsonb cannot store.
pub const BAD_VALUE: &str = "bad_value";
pub const MISSING_REQUIRED: &str = "missing_required";
pub const BAD_TIMESTAMP: &str = "bad_timestamp";
pub const BAD_DATE: &str = "bad_date";
pub const BAD_NUMBER: &str = "bad_number";
pub const BAD_BOOLEAN: &str = "bad_boolean";
pub const OUT_OF_RANGE: &str = "out_of_range";
pub const NOT_ALLOWED: &str = "not_allowed";
pub const PATTERN_MISMATCH: &str = "pattern_mismatch";
pub const TOO_LONG: &str = "too_long";
pub const DUPLICATE: &str = "duplicate";
/// Merge: an earlier row with the same key and other values (the later one is kept).
pub const SUPERSEDED: &str = "superseded";
/// `on_new_key = "reject"`: a record with a top-level key the contract does not declare.
pub const UNKNOWN_KEY: &str = "unknown_key";
/// A split log (`unrouted = "reject"`): a record whose kind has no table.
pub const UNROUTED: &str = "unrouted";

/// Every reason a row can be rejected for, in rule order.
pub const REASONS: [&str; 15] = [
    MALFORMED,
    UNROUTED,
    BAD_VALUE,
    MISSING_REQUIRED,
    BAD_TIMESTAMP,
    BAD_DATE,
    BAD_NUMBER,
    BAD_BOOLEAN,
    OUT_OF_RANGE,
    NOT_ALLOWED,
    PATTERN_MISMATCH,
    TOO_LONG,
    UNKNOWN_KEY,
    DUPLICATE,
    SUPERSEDED,
];

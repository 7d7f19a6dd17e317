//! The columns tier adds to a dataset's frames beside the declared ones, as a chunk goes
//! through a load: where each record is, what went wrong with it, its row hash. Every name
//! starts with `__`, which contracts refuse in a column's name.

/// The row's index within its chunk (to find its raw record again).
pub const COL_ROW: &str = "__row";
/// The line the record starts on.
pub const COL_LINE: &str = "__line";
/// The record's ordinal in its file: its identity (a line may hold many records).
pub const COL_RECORD: &str = "__record";
/// Why parsing failed (`malformed`, `bad_value`), before any cast.
pub const COL_ISSUE: &str = "__issue";
/// What the first failing rule says.
pub const COL_DETAIL: &str = "__detail";
/// Top-level keys the record has that no column reads.
pub const COL_EXTRA: &str = "__extra";
/// The first failing rule's reason; null for a row that is accepted.
pub const COL_REASON: &str = "__reason";
/// NaN numbers the row had (stored as NULL).
pub const COL_NAN: &str = "__nan";
/// Each row's `hash_record_extended(row, ROW_HASH_SEED)`, as the duplicate check computes
/// it beside its own digest (see `dedupe::row_digests`).
pub const COL_ROW_HASH: &str = "__row_hash";
/// A digest of the record's child rows (see `children::children_digests`): part of what
/// makes two records duplicates, not of the row's own hash.
pub const COL_CHILDREN: &str = "__children";

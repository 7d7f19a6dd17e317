//! `tier infer --split-by KEY`: a split log's contract from the data, one table per kind of
//! record. Records are grouped by their kind exactly as a load routes them (the same
//! reader of the same key); the keys every kind has, with the same type, are the envelope
//! declared once in the log's file; each kind's own keys go to its file, folded to the
//! column budget kind by kind.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::Result;

use super::{bare_columns, columns_text, header, key_prefix, percent, toml_string, Arrays, Columns, Profile};
use crate::dataset::Dataset;
use crate::transform::record::{Cell, KeyHints};

/// A log's records by kind.
#[derive(Default)]
pub struct SplitProfile {
    /// Per kind, most records first (then by name).
    pub kinds: Vec<(String, Profile)>,
    /// Records without a kind (no value at the key, or not a text).
    pub unrouted: Profile,
    pub records: u64,
    pub malformed: u64,
}

impl SplitProfile {
    /// The prefix the log's keys carry (see `key_prefix`).
    pub fn key_prefix(&self) -> String {
        key_prefix(&self.all())
    }

    /// The whole log's profile (every record that is an object).
    fn all(&self) -> Profile {
        let mut all = self.unrouted.clone();
        for (_, p) in &self.kinds {
            all.merge(p.clone());
        }
        all.records = self.records;
        all.malformed = self.malformed;
        all
    }
}

/// Reads every record of `inputs` and profiles them kind by kind, the kind being the value
/// at `router`'s one field (see `Dataset::router`).
pub fn profile(inputs: &[crate::source::Input], router: &'static Dataset, child_depth: usize) -> Result<SplitProfile> {
    /// Profiles by kind, the records, and those the kind's reader could not take.
    struct ByKind {
        kinds: HashMap<Option<String>, Profile>,
        records: u64,
        bad: u64,
    }
    let folded = super::fold_records(
        inputs,
        || ByKind { kinds: HashMap::new(), records: 0, bad: 0 },
        |acc, chunk, spans| {
            let mut cells: Vec<Cell> = Vec::with_capacity(1);
            let mut hints = KeyHints::default();
            acc.records += spans.len() as u64;
            for span in spans {
                let bytes = chunk.bytes(span);
                let kind = match span.damage {
                    Some(_) => Err(()),
                    None => crate::transform::route::kind_of(router, bytes, &mut cells, &mut hints).map_err(drop),
                };
                // A blank kind names no table: such records go to the catch-all.
                match kind.map(|k| k.filter(|k| !k.trim().is_empty())) {
                    Ok(kind) => acc.kinds.entry(kind).or_insert_with(|| Profile::with_depth(child_depth)).add_record(bytes),
                    Err(()) => acc.bad += 1,
                }
            }
        },
        |a, b| {
            a.records += b.records;
            a.bad += b.bad;
            for (k, p) in b.kinds {
                a.kinds.entry(k).or_insert_with(|| Profile::with_depth(child_depth)).merge(p);
            }
        },
    )?;
    let (mut kinds, records, mut malformed) = (folded.kinds, folded.records, folded.bad);
    let unrouted = kinds.remove(&None).unwrap_or_default();
    let mut kinds: Vec<(String, Profile)> = kinds.into_iter().filter_map(|(k, p)| k.map(|k| (k, p))).collect();
    kinds.sort_by(|(a, p), (b, q)| q.records.cmp(&p.records).then(a.cmp(b)));
    // Records the kind's reader took that are not objects to the profile (bare tokens it
    // quotes, say) are malformed there too: counted once, in the log's total.
    malformed += kinds.iter().map(|(_, p)| p.malformed).sum::<u64>() + unrouted.malformed;
    Ok(SplitProfile { kinds, unrouted, records, malformed })
}

/// A split contract: the log's file, and one `(stem, text)` per kind, for `<log>/<stem>.toml`.
pub struct SplitContract {
    pub log: String,
    pub kinds: Vec<(String, String)>,
}

/// The contract of a split log: the envelope (the keys every kind has with one type) in the
/// log's file, each kind's other keys in its own, each table at most `max_columns` columns
/// where objects can fold.
pub fn contract(profile: &SplitProfile, name: &str, file: &str, by: &str, max_columns: usize) -> SplitContract {
    let all = profile.all();
    let prefix = key_prefix(&all);
    let parsed = all.records - all.malformed;
    let by_bare = bare_key(by, &prefix);
    let kinds: Vec<(&String, Columns, u64, &Profile)> =
        profile.kinds.iter().map(|(kind, p)| (kind, bare_columns(p, &prefix), p.records - p.malformed, p)).collect();
    // The envelope: scalar keys in every kind, of one type there and over the whole log.
    let whole = bare_columns(&all, &prefix);
    let envelope: Columns = whole
        .iter()
        .filter(|(key, col)| {
            *key != by_bare
                && col.objects == 0
                && !kinds.is_empty()
                && kinds
                    .iter()
                    .all(|(_, cols, _, _)| cols.iter().any(|(k, c)| k == key && c.present > 0 && c.objects == 0 && c.kind() == col.kind()))
        })
        .cloned()
        .collect();
    let envelope_keys: Vec<String> = envelope.iter().map(|(k, _)| k.clone()).collect();
    let mut log = header(&all, name, file, &prefix);
    let _ = writeln!(log, "split_by = {}", toml_string(by));
    let _ = writeln!(
        log,
        "unrouted = \"table\"   # records of no kind below ({} of {}) go to {name}_{}; \"reject\" rejects them",
        profile.unrouted.records,
        profile.records,
        crate::contract::CATCH_ALL
    );
    let budget = max_columns.saturating_sub(envelope.len()).max(1);
    let shared = columns_text(envelope, max_columns, parsed, &[], Arrays::NONE);
    let _ = writeln!(log, "# The envelope: keys every kind has, as every table's first columns.");
    log.push_str(&shared.day);
    log.push_str(&shared.blocks);

    let mut stems: Vec<String> = Vec::new();
    let mut files = Vec::new();
    for (kind, columns, kind_parsed, kind_profile) in kinds {
        let own: Columns = columns.into_iter().filter(|(k, _)| *k != by_bare && !envelope_keys.contains(k)).collect();
        let room = crate::contract::MAX_NAME.saturating_sub(name.len() + 1).max(1);
        let base = super::column_name(kind).chars().take(room).collect::<String>();
        let stem = super::distinct_name(&base, |s| {
            stems.iter().any(|t| t == s) || s == crate::contract::CATCH_ALL || name.len() + 1 + s.len() > crate::contract::MAX_NAME
        });
        stems.push(stem.clone());
        let mut text = String::new();
        let _ = writeln!(
            text,
            "# Records whose {by} is {}: {kind_parsed} of {} ({}), into table {name}_{stem}.",
            toml_string(kind),
            profile.records,
            percent(kind_parsed, profile.records)
        );
        let _ = writeln!(text, "when = {}", toml_string(kind));
        let arrays = Arrays { profiles: &kind_profile.arrays, prefix: &prefix, level: 0 };
        let body = columns_text(own, budget, kind_parsed, &shared.names, arrays);
        text.push_str(&body.over_budget);
        // The log's day serves every kind; a kind of its own timestamps may suggest one.
        if !shared.day.starts_with("day =") && body.day.starts_with("day =") {
            text.push_str(&body.day);
        }
        text.push_str(&body.blocks);
        files.push((stem, text));
    }
    SplitContract { log, kinds: files }
}

/// A key as the profile spells it, bare of the prefix: a top-level key plain (`/type` is
/// `type`), a deeper one a pointer whose first step is bare.
fn bare_key(by: &str, prefix: &str) -> String {
    let Some(rest) = by.strip_prefix('/') else { return by.strip_prefix(prefix).unwrap_or(by).to_string() };
    let unescape = |s: &str| s.replace("~1", "/").replace("~0", "~");
    match rest.split_once('/') {
        None => {
            let key = unescape(rest);
            key.strip_prefix(prefix).unwrap_or(&key).to_string()
        }
        Some((head, below)) => {
            let head = unescape(head);
            let bare = head.strip_prefix(prefix).unwrap_or(&head);
            format!("/{}/{below}", bare.replace('~', "~0").replace('/', "~1"))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kind_key_as_the_profile_spells_it() {
        assert_eq!(super::bare_key("/type", ""), "type");
        assert_eq!(super::bare_key("type", ""), "type");
        assert_eq!(super::bare_key("/e.type", "e."), "type");
        assert_eq!(super::bare_key("/e.payload/action", "e."), "/payload/action");
        assert_eq!(super::bare_key("/a~1b/c", ""), "/a~1b/c");
    }
}

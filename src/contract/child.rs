//! Child tables: an array of a record's objects (or scalars) kept as a table of its own,
//! one row per element, declared under its parent as `[[child]]` (and `[[child.child]]` for
//! an array inside the elements):
//!
//! ```toml
//! [[child]]
//! name = "commits"            # table <parent>_commits
//! key = "/payload/commits"    # the array, in the parent's record
//! [[child.column]]
//! name = "sha"                # keys relative to the element; "." is the element itself
//! type = "text"
//! ```
//!
//! A child row carries its parent's key (the parent's `unique` columns, or `tier_record`:
//! the record's ordinal in its file, beside `load_id`), its `position` in the array, and the
//! element's columns, typed and checked by their rules.

use serde::Deserialize;
use toml::Spanned;

use super::{columns, is_identifier, Errors, RawColumn, MAX_NAME};
use crate::dataset::{Child, Dataset, Field, Key, Kind, Rules};
use crate::frame::COL_RECORD;

/// The column a parent without `unique` gets, and its children inherit: the record's
/// ordinal in its file (with `load_id`, a record's identity).
pub const RECORD_ID: &str = "tier_record";
/// A child row's place in its array (0 for the first element).
pub const POSITION: &str = "position";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChild {
    name: Spanned<String>,
    key: Spanned<String>,
    #[serde(rename = "column", default)]
    columns: Vec<Spanned<RawColumn>>,
    #[serde(rename = "child", default)]
    children: Vec<Spanned<RawChild>>,
    #[serde(rename = "check", default)]
    checks: Vec<Spanned<super::check::RawCheck>>,
}

/// A column every child of a table inherits: its name in the child, type, and where the
/// value comes from (the parent's column of that name, or the record's ordinal).
#[derive(Clone)]
struct Inherited {
    name: String,
    kind: Kind,
    from: Key,
}

/// The child tables of a parent table `parent` (its fields grow `tier_record` when it has
/// children and no `unique`), every mistake reported in `errors`.
pub(super) fn read(
    raw: Vec<Spanned<RawChild>>,
    parent: &str,
    log: &str,
    fields: &mut Vec<Field>,
    unique: &[String],
    file: &str,
    errors: &mut Errors,
) -> Vec<Child> {
    if raw.is_empty() {
        return Vec::new();
    }
    let key: Vec<Inherited> = match unique.is_empty() {
        false => unique
            .iter()
            .filter_map(|u| fields.iter().find(|f| f.name == *u))
            .map(|f| Inherited { name: f.name.clone(), kind: f.kind, from: Key::Parent(f.name.clone()) })
            .collect(),
        true => {
            if fields.iter().any(|f| f.name == RECORD_ID) {
                errors.fail(0..0, format!("column {RECORD_ID:?} is tier's own in a table with child tables and no `unique`"));
            }
            fields.push(tier_field(RECORD_ID, Kind::Bigint, Key::Parent(COL_RECORD.to_string())));
            vec![Inherited { name: RECORD_ID.into(), kind: Kind::Bigint, from: Key::Parent(COL_RECORD.to_string()) }]
        }
    };
    raw.into_iter().filter_map(|c| child(c.into_inner(), parent, log, &key, file, errors)).collect()
}

fn child(raw: RawChild, parent: &str, log: &str, key: &[Inherited], file: &str, errors: &mut Errors) -> Option<Child> {
    let name = raw.name.get_ref().clone();
    let table = format!("{parent}_{name}");
    if !is_identifier(&name) || table.len() > MAX_NAME {
        errors.fail(
            raw.name.span(),
            format!("child {name:?} names table {table:?}: a plain identifier of at most {MAX_NAME} characters in all"),
        );
        return None;
    }
    let array = match raw.key.get_ref().as_str() {
        "" | "." => {
            errors.fail(raw.key.span(), "key must name the array: a key or a JSON Pointer such as \"/payload/commits\"".into());
            return None;
        }
        k => Key::parse(k),
    };
    let end = raw.key.span().end;
    let mut own = match raw.columns.is_empty() {
        true => {
            errors.fail(
                raw.name.span(),
                format!("child {name:?} has no columns: declare [[child.column]] (key \".\" for the element itself)"),
            );
            return None;
        }
        false => columns(raw.columns, end, errors),
    };
    for f in own.iter_mut() {
        if f.key == Key::Plain(".".into()) {
            f.key = Key::Record;
        }
    }
    let mut fields: Vec<Field> = key.iter().map(|k| tier_field(&k.name, k.kind, k.from.clone())).collect();
    fields.push(tier_field(POSITION, Kind::Integer, Key::Position));
    for f in own {
        if fields.iter().any(|k| k.name == f.name) {
            errors.fail(
                raw.name.span(),
                format!("child {name:?}: column {:?} is tier's own here (the parent's key or the position)", f.name),
            );
        } else {
            fields.push(f);
        }
    }
    // A grandchild inherits this child's key and its position.
    let mut below: Vec<Inherited> = key
        .iter()
        .map(|k| {
            let from = match &k.from {
                Key::Parent(c) if c == COL_RECORD => k.from.clone(),
                _ => Key::Parent(k.name.clone()),
            };
            Inherited { name: k.name.clone(), kind: k.kind, from }
        })
        .collect();
    below.push(Inherited { name: format!("{name}_{POSITION}"), kind: Kind::Integer, from: Key::Parent(POSITION.into()) });
    let children: Vec<Child> = raw.children.into_iter().filter_map(|c| child(c.into_inner(), &table, log, &below, file, errors)).collect();
    // A child table has no day; its rejects are its record's, in the parent's rejects.
    let checks = super::check::read(raw.checks, &[], &fields, None, super::check::Rejects::OfTheLog, errors);
    // Under a keyed parent, a row is its parent's key and its position (the unique index a
    // merge replaces children by); under `tier_record`, rows are only ever added.
    let unique: Vec<String> = match key.iter().any(|k| k.name == RECORD_ID) {
        true => Vec::new(),
        false => key.iter().map(|k| k.name.clone()).chain([POSITION.to_string()]).collect(),
    };
    let mut ds = Dataset::new(table, String::new(), String::new(), fields, None, unique, file.to_string());
    ds.log = Some(log.to_string());
    ds.set_children(children);
    ds.checks = checks;
    Some(Child { array, ds: Box::leak(Box::new(ds)) })
}

fn tier_field(name: &str, kind: Kind, key: Key) -> Field {
    Field {
        name: name.to_string(),
        key,
        kind,
        required: true,
        rules: Rules::default(),
        timezone: None,
        format: crate::values::timestamp::Format::Iso,
        evolved: false,
    }
}

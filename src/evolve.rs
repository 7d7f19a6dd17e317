//! `on_new_key = "evolve"`: a load's dataset grown by the top-level keys its file brings
//! that the contract does not declare.
//!
//! The file is profiled first (`infer`'s reader, every record, all cores), so each new key's
//! type comes from every value in this load, as `tier infer` would pick it; a key holding
//! objects becomes a `json` column. A column an earlier evolving load already added keeps
//! the type it has in the table: a value that no longer fits it is a reject, never a silent
//! widening. The load then adds the columns in its own transaction (see `pg::load`), and the
//! ledger records them as its `schema_changes`.

use anyhow::Result;

use crate::dataset::{Dataset, Field, Key, Kind, Rules};
use crate::infer;
use crate::source::Input;

/// The new keys of `input` as columns: `columns_of(table)` says a table's columns and
/// types (empty when there is none yet). Returns the grown dataset (leaked: it lives as long
/// as the load's threads, as contracts do), or None when the file brings no new key. A split
/// log's records are grouped by kind as the load routes them, each kind's table grown by its
/// own records' new keys (the catch-all keeps whole records: it has none).
pub fn grow(
    ds: &'static Dataset,
    input: &Input,
    mut columns_of: impl FnMut(&str) -> Result<Vec<(String, String)>>,
) -> Result<Option<&'static Dataset>> {
    let Some(split) = &ds.split else {
        let profile = infer::profile_inputs(std::slice::from_ref(input), 0)?;
        let added = new_fields(ds, &profile, &columns_of(&ds.name)?);
        return Ok((!added.is_empty()).then(|| &*Box::leak(Box::new(ds.with_fields(added)))));
    };
    let profile = infer::split::profile(std::slice::from_ref(input), split.router, 0)?;
    let mut grown = split.clone();
    let mut any = false;
    for (kind, records) in &profile.kinds {
        let Some(&t) = split.routes.get(kind) else { continue };
        let table = grown.tables[t];
        let added = new_fields(table, records, &columns_of(&table.name)?);
        if !added.is_empty() {
            grown.tables[t] = Box::leak(Box::new(table.with_fields(added)));
            any = true;
        }
    }
    if !any {
        return Ok(None);
    }
    let mut log = ds.with_fields(Vec::new());
    log.split = Some(grown);
    Ok(Some(Box::leak(Box::new(log))))
}

/// The top-level keys `profile` saw that `ds` does not read, as columns (`table`: its table's
/// columns and types).
fn new_fields(ds: &Dataset, profile: &infer::Profile, table: &[(String, String)]) -> Vec<Field> {
    let mut added: Vec<Field> = Vec::new();
    // A column of the other keys keeps every key: none is new.
    if ds.rest_field().is_some() {
        return added;
    }
    let mut seen: Vec<String> = Vec::new();
    for (key, column) in &profile.columns {
        // A pointer (`/context/app`) stands for its top-level key, which holds objects.
        let (top, kind) = match key.strip_prefix('/') {
            Some(rest) => (rest.split('/').next().unwrap_or_default().replace("~1", "/").replace("~0", "~"), Kind::Json),
            None => (key.clone(), column.kind()),
        };
        if ds.field_index(&top).is_some() || ds.nested_fields(&top).is_some() {
            continue;
        }
        let bare = top.strip_prefix(ds.prefix.as_str()).filter(|_| !ds.prefix.is_empty()).unwrap_or(&top).to_string();
        if let Some(i) = seen.iter().position(|k| *k == bare) {
            // Seen as a plain key and as objects: json holds both.
            if kind == Kind::Json {
                added[i].kind = Kind::Json;
            }
            continue;
        }
        let name = infer::distinct_name(&infer::column_name(&bare), |n| ds.field(n).is_some() || added.iter().any(|f| f.name == n));
        // A column already in the table (an earlier evolving load added it) keeps its type.
        let kind = match table.iter().find(|(n, _)| *n == name) {
            Some((_, ty)) => match Kind::ALL.into_iter().find(|k| k.catalog_type() == ty) {
                Some(k) => k,
                None => {
                    tracing::warn!("{}: new key {bare:?} maps to column {name}, which is {ty} in the table: left out", ds.name);
                    continue;
                }
            },
            None => kind,
        };
        seen.push(bare.clone());
        added.push(Field {
            name,
            key: Key::Plain(bare),
            kind,
            required: false,
            rules: Rules::default(),
            timezone: None,
            format: crate::values::timestamp::Format::Iso,
            evolved: true,
        });
    }
    added
}

/// The contract lines that declare a dataset's evolved columns (to paste into its file; a
/// split log's, a comment naming each table's file first).
pub fn contract_lines(ds: &Dataset) -> String {
    if ds.split.is_some() {
        let mut out = String::new();
        for t in ds.tables_here().into_iter().filter(|t| t.fields.iter().any(|f| f.evolved)) {
            out.push_str(&format!("\n# in {}:{}", t.source, contract_lines(t)));
        }
        return out;
    }
    let mut out = String::new();
    for f in ds.fields.iter().filter(|f| f.evolved) {
        out.push_str(&format!("\n[[column]]\nname = {}\n", infer::toml_string(&f.name)));
        if f.key.display() != f.name {
            out.push_str(&format!("key = {}\n", infer::toml_string(&f.key.display())));
        }
        out.push_str(&format!("type = {}\n", infer::toml_string(f.kind.name())));
    }
    out
}

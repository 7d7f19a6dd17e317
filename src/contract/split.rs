//! A split log's tables: `split_by` in the log's contract, one file per kind of record in
//! the directory beside it (`datasets/<log>/<kind>.toml`), the catch-all table for the rest.
//!
//! ```toml
//! # datasets/github/push.toml: records whose /type is "PushEvent" -> table github_push
//! when = "PushEvent"
//! [[column]]
//! name = "head"
//! key = "/payload/head"
//! type = "text"
//! ```

use std::collections::HashMap;

use serde::Deserialize;
use toml::Spanned;

use super::{at, columns, day_column, unique_columns, ContractError, Errors, RawColumn, MAX_NAME};
use crate::dataset::{Dataset, Field, Key, Kind, Rules, Split, Unrouted};

/// The catch-all table's name after the log's: `<log>_other`.
pub const CATCH_ALL: &str = "other";
/// The catch-all table's column holding the whole record.
pub const RECORD_COLUMN: &str = "record";

/// One kind's contract file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKind {
    /// The value (or values) of the log's `split_by` that route a record here.
    when: Spanned<When>,
    day: Option<Spanned<String>>,
    unique: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(rename = "column", default)]
    columns: Vec<Spanned<RawColumn>>,
    #[serde(rename = "child", default)]
    children: Vec<Spanned<super::child::RawChild>>,
    #[serde(rename = "check", default)]
    checks: Vec<Spanned<super::check::RawCheck>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum When {
    One(String),
    Many(Vec<String>),
}

/// What the log's own contract says about its split.
pub struct LogSplit<'a> {
    /// The log's: its tables' too.
    pub on_new_key: crate::dataset::OnNewKey,
    pub by: Spanned<String>,
    pub unrouted: Option<Spanned<String>>,
    pub log: &'a str,
    /// The log's contract file.
    pub file: &'a str,
    pub prefix: &'a str,
    pub envelope: &'a [Field],
    pub day: Option<&'a str>,
    pub unique: &'a [String],
    /// The log's checks that check every table (all but reject_share).
    pub checks: &'a [crate::checks::DeclaredCheck],
}

/// The split of a log: its kinds' files (`(file shown, stem, text)`, in name order) read
/// into one dataset each, every mistake reported where it is. `errors` holds the log file's.
pub fn read(spec: LogSplit, kinds: &[(String, String, String)], errors: &mut Errors) -> Option<(Split, Vec<ContractError>)> {
    let mut kind_errors = Vec::new();
    let by = Key::parse(spec.by.get_ref());
    if spec.by.get_ref().is_empty() || matches!(&by, Key::Pointer(parts) if parts.iter().any(String::is_empty)) {
        errors.fail(spec.by.span(), "split_by must name a key or a JSON Pointer such as \"/type\"".into());
        return None;
    }
    let catch_all = match spec.unrouted.as_ref().map(|u| u.get_ref().as_str()) {
        None | Some("table") => true,
        Some("reject") => false,
        Some(other) => {
            let span = spec.unrouted.as_ref().map(|u| u.span()).unwrap_or_default();
            errors.fail(span, format!("unrouted {other:?}: one of table (into {}_{CATCH_ALL}), reject", spec.log));
            return None;
        }
    };
    if catch_all && spec.envelope.iter().any(|f| f.name == RECORD_COLUMN) {
        let span = spec.by.span();
        errors.fail(
            span,
            format!("the catch-all table {}_{CATCH_ALL} keeps the record in a column {RECORD_COLUMN:?}; rename the envelope's", spec.log),
        );
    }
    if kinds.is_empty() {
        errors.fail(
            spec.by.span(),
            format!("split_by needs its tables: one file per kind in {}/ (e.g. push.toml with `when = \"push\"`)", spec.log),
        );
        return None;
    }
    let mut tables: Vec<&'static Dataset> = Vec::new();
    let mut routes: HashMap<String, usize, ahash::RandomState> = HashMap::default();
    for (file, stem, text) in kinds {
        let table = format!("{}_{stem}", spec.log);
        match read_kind(&spec, file, stem, &table, text, tables.len(), &mut routes, catch_all) {
            Ok(ds) => tables.push(Box::leak(Box::new(ds))),
            Err(e) => kind_errors.extend(e),
        }
    }
    let unrouted = match catch_all {
        true => {
            let mut fields = spec.envelope.to_vec();
            fields.push(Field {
                name: RECORD_COLUMN.into(),
                key: Key::Record,
                kind: Kind::Json,
                required: false,
                rules: Rules::default(),
                timezone: None,
                format: crate::values::timestamp::Format::Iso,
                evolved: false,
            });
            let name = format!("{}_{CATCH_ALL}", spec.log);
            tables.push(table_dataset(&spec, name, fields, spec.day.map(str::to_string), spec.unique.to_vec()));
            Unrouted::Table(tables.len() - 1)
        }
        false => Unrouted::Reject,
    };
    let router = Dataset::router(by.clone(), spec.prefix);
    Some((Split { by, router: Box::leak(Box::new(router)), routes, tables, unrouted }, kind_errors))
}

fn table_dataset(spec: &LogSplit, name: String, fields: Vec<Field>, day: Option<String>, unique: Vec<String>) -> &'static Dataset {
    let mut ds = Dataset::new(name, String::new(), spec.prefix.to_string(), fields, day, unique, spec.file.to_string());
    ds.checks = spec.checks.to_vec();
    Box::leak(Box::new(of_log(ds, spec)))
}

/// A table of the split log: the log's, and its kind key is no unknown key to it.
fn of_log(mut ds: Dataset, spec: &LogSplit) -> Dataset {
    ds.log = Some(spec.log.to_string());
    ds.on_new_key = spec.on_new_key;
    ds.also_known(&Key::parse(spec.by.get_ref()));
    ds
}

#[allow(clippy::too_many_arguments)]
fn read_kind(
    spec: &LogSplit,
    file: &str,
    stem: &str,
    table: &str,
    text: &str,
    index: usize,
    routes: &mut HashMap<String, usize, ahash::RandomState>,
    catch_all: bool,
) -> Result<Dataset, Vec<ContractError>> {
    let raw: RawKind = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| super::locate(text, s.start)).unwrap_or((1, 1));
        vec![at(file, line, column, e.message().trim().to_string())]
    })?;
    let mut errors = Errors { text, file, list: Vec::new() };
    if !super::is_identifier(stem) || table.len() > MAX_NAME {
        errors.fail(
            0..0,
            format!("the file names table {table:?}: a plain identifier of at most {MAX_NAME} characters (letters, digits, _)"),
        );
    } else if catch_all && stem == CATCH_ALL {
        errors.fail(0..0, format!("{table} is the catch-all table (unrouted = \"table\"); name this kind otherwise"));
    }
    let values = match raw.when.get_ref() {
        When::One(v) => vec![v.clone()],
        When::Many(v) => v.clone(),
    };
    if values.is_empty() {
        errors.fail(raw.when.span(), "when must name at least one value".into());
    }
    for value in values {
        if routes.insert(value.clone(), index).is_some() {
            errors.fail(raw.when.span(), format!("when {value:?} routes to another table too"));
        }
    }
    let own = match raw.columns.is_empty() {
        true => Vec::new(),
        false => columns(raw.columns, text.len(), &mut errors),
    };
    let mut fields = spec.envelope.to_vec();
    for f in own {
        if let Some(e) = fields.iter().find(|e| e.name == f.name || e.key == f.key) {
            errors.fail(0..0, format!("column {:?} (key {:?}) is in the log's envelope already, as {:?}", f.name, f.key.display(), e.name));
        } else {
            fields.push(f);
        }
    }
    let day = match raw.day {
        Some(d) => day_column(d, &fields, &mut errors),
        None => spec.day.map(str::to_string),
    };
    let unique = match raw.unique {
        Some(u) => unique_columns(u, &fields, &mut errors),
        None => spec.unique.to_vec(),
    };
    let checks = super::check::read(raw.checks, spec.checks, &fields, day.as_deref(), super::check::Rejects::OfTheLog, &mut errors);
    let children = super::child::read(raw.children, table, spec.log, &mut fields, &unique, file, &mut errors);
    if !errors.list.is_empty() {
        return Err(errors.list);
    }
    let mut ds = Dataset::new(table.to_string(), String::new(), spec.prefix.to_string(), fields, day, unique, file.to_string());
    ds.set_children(children);
    ds.checks = checks;
    Ok(of_log(ds, spec))
}

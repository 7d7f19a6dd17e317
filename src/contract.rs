//! Contract files -> datasets. One TOML file per dataset, `datasets/<name>.toml`; a broken
//! contract is refused before anything is read, with `FILE:line:column` and what is wrong.
//! The only user of the `toml` crate.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::dataset::{Dataset, Field, Key, Kind, Mode, OnNewKey, Rules};
use crate::error::Failure;
use crate::values::{number, timestamp};

mod check;
mod child;
mod split;
pub use child::{POSITION, RECORD_ID};
pub use split::{CATCH_ALL, RECORD_COLUMN};

/// The shipped examples, used when no contract directory exists (an installed binary, a
/// container): the files of `datasets/` in the repository, embedded by `build.rs`.
const EXAMPLES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/examples.rs"));

/// The declared datasets, in name order.
pub struct Catalog {
    pub datasets: Vec<&'static Dataset>,
    /// Where they were read from (or a note that they are the built-in examples).
    pub origin: String,
}

impl Catalog {
    pub fn get(&self, name: &str) -> Result<&'static Dataset, Failure> {
        self.datasets
            .iter()
            .copied()
            .find(|d| d.name == name)
            .ok_or_else(|| Failure::Input(format!("no dataset {name:?} in {} (declared: {})", self.origin, self.names().join(", "))))
    }

    pub fn names(&self) -> Vec<String> {
        self.datasets.iter().map(|d| d.name.clone()).collect()
    }
}

/// One mistake in a contract, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ContractError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

/// The names of the datasets declared in `dir`, without parsing a contract (a contract's file
/// is named after its dataset): the command line's possible values. The built-in examples'
/// where there is no such directory.
pub fn declared_names(dir: &Path, explicit: bool) -> Vec<String> {
    if !dir.is_dir() {
        return match explicit {
            true => Vec::new(),
            false => EXAMPLES.iter().map(|(file, _)| file.trim_end_matches(".toml").to_string()).collect(),
        };
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().to_string()))
                .filter(|n| is_identifier(n))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Reads the `*.toml` in `dir` (only `<only>.toml` when one dataset is asked for: a
/// command parses the contracts it needs). `explicit` says the directory was asked for (flag
/// or environment): then a missing one is an error, else the built-in examples stand in.
pub fn load(dir: &Path, explicit: bool, only: Option<&str>) -> Result<Catalog, Failure> {
    // A name with no file of its own may be a table of a split log (`<log>_<kind>`): all.
    let only = only.filter(|name| !dir.is_dir() || dir.join(format!("{name}.toml")).is_file());
    let mut results = check_dir_only(dir, explicit, only)?;
    if let Some(name) = only {
        results.files.retain(|(_, r)| r.as_ref().map_or(true, |ds| ds.name == name));
    }
    let mut errors = Vec::new();
    let mut datasets: Vec<&'static Dataset> = Vec::new();
    for (_, result) in results.files {
        match result {
            Ok(ds) => datasets.push(Box::leak(Box::new(ds))),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(Failure::Input(format!("broken contract:\n{}", list.join("\n"))));
    }
    datasets.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Catalog { datasets, origin: results.origin })
}

/// Every contract of a directory, each read on its own.
pub struct ContractFiles {
    pub origin: String,
    pub files: Vec<(String, Result<Dataset, Vec<ContractError>>)>,
}

pub fn check_dir(dir: &Path, explicit: bool) -> Result<ContractFiles, Failure> {
    check_dir_only(dir, explicit, None)
}

/// `check_dir`, of one dataset's file only when `only` names one.
fn check_dir_only(dir: &Path, explicit: bool, only: Option<&str>) -> Result<ContractFiles, Failure> {
    if !dir.is_dir() {
        if explicit || dir.exists() {
            return Err(Failure::Input(format!("{}: no such directory of dataset contracts", dir.display())));
        }
        let files = EXAMPLES.iter().map(|(name, text)| (name.to_string(), parse_all(text, &format!("(built-in) {name}")))).collect();
        return Ok(ContractFiles { origin: "the built-in examples (no datasets/ directory here)".into(), files });
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Failure::Input(format!("{}: cannot read: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| only.is_none_or(|name| p.file_stem().is_some_and(|s| s == name)))
        .collect();
    paths.sort();
    let mut files = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    for path in paths {
        let shown = path.display().to_string();
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if size > MAX_CONTRACT_BYTES {
            let message = format!("{size} bytes; a contract is at most {MAX_CONTRACT_BYTES} (1,599 columns take about 100 KB)");
            files.push((shown.clone(), Err(vec![at(&shown, 1, 1, message)])));
            continue;
        }
        let result = match std::fs::read_to_string(&path) {
            Ok(text) => kind_files(&path.with_extension("")).and_then(|kinds| parse_log(&text, &shown, &kinds)).and_then(|ds| {
                let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                if stem != ds.name {
                    return Err(vec![at(&shown, 1, 1, format!("declares dataset {:?}; its file must be named {}.toml", ds.name, ds.name))]);
                }
                if let Some((_, other)) = names.iter().find(|(n, _)| *n == ds.name) {
                    return Err(vec![at(&shown, 1, 1, format!("dataset {:?} is declared twice (also in {other})", ds.name))]);
                }
                names.push((ds.name.clone(), shown.clone()));
                Ok(ds)
            }),
            Err(e) => Err(vec![at(&shown, 1, 1, format!("cannot read: {e}"))]),
        };
        files.push((shown, result));
    }
    if files.is_empty() {
        return Err(Failure::Input(format!(
            "{}: no dataset contracts (*.toml) here; `tier infer FILE --name NAME --write` makes one",
            dir.display()
        )));
    }
    Ok(ContractFiles { origin: dir.display().to_string(), files })
}

/// The contracts of a split log's kinds, `<dir>/*.toml` in name order, as `(file shown,
/// stem, text)`; none when there is no such directory.
fn kind_files(dir: &Path) -> Result<Vec<(String, String, String)>, Vec<ContractError>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let shown = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| vec![at(&shown, 1, 1, format!("cannot read: {e}"))])?;
    let mut paths: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    paths.sort();
    let mut kinds = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let file = path.display().to_string();
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if size > MAX_CONTRACT_BYTES {
            errors.push(at(&file, 1, 1, format!("{size} bytes; a contract is at most {MAX_CONTRACT_BYTES}")));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => kinds.push((file, stem, text)),
            Err(e) => errors.push(at(&file, 1, 1, format!("cannot read: {e}"))),
        }
    }
    match errors.is_empty() {
        true => Ok(kinds),
        false => Err(errors),
    }
}

fn at(file: &str, line: usize, column: usize, message: String) -> ContractError {
    ContractError { file: file.to_string(), line, column, message }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContract {
    name: Spanned<String>,
    file: Option<Spanned<String>>,
    key_prefix: Option<Spanned<String>>,
    day: Option<Spanned<String>>,
    unique: Option<Spanned<Vec<Spanned<String>>>>,
    mode: Option<Spanned<String>>,
    on_new_key: Option<Spanned<String>>,
    /// A log split into one table per kind of record: where the kind is.
    split_by: Option<Spanned<String>>,
    /// A split log's records of no declared kind: `table` (the catch-all) or `reject`.
    unrouted: Option<Spanned<String>>,
    #[serde(rename = "column", default)]
    columns: Vec<Spanned<RawColumn>>,
    /// Arrays kept as child tables.
    #[serde(rename = "child", default)]
    children: Vec<Spanned<child::RawChild>>,
    /// Declared checks of the table.
    #[serde(rename = "check", default)]
    checks: Vec<Spanned<check::RawCheck>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: Spanned<String>,
    key: Option<Spanned<String>>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    #[serde(default)]
    required: bool,
    min: Option<Spanned<toml::Value>>,
    max: Option<Spanned<toml::Value>>,
    allowed: Option<Spanned<Vec<toml::Value>>>,
    pattern: Option<Spanned<String>>,
    max_length: Option<Spanned<i64>>,
    timezone: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    /// What of the Kafka message the column holds instead of a key of its value.
    message: Option<Spanned<String>>,
}

/// The longest dataset name: the longest table tier derives from it, `<name>_rejects__tier_new`,
/// must fit PostgreSQL's 63 bytes.
pub const MAX_NAME: usize = 63 - "_rejects__tier_new".len();
/// The most columns a contract declares: PostgreSQL's 1,600 less tier's `load_id`.
pub const MAX_COLUMNS: usize = 1599;
/// The largest contract file read (a contract of `MAX_COLUMNS` columns is about 100 KB).
pub const MAX_CONTRACT_BYTES: u64 = 1 << 20;

/// Parses one contract (for tests and for `load`); the first mistake is the error.
pub fn parse(text: &str, file: &str) -> Result<Dataset, ContractError> {
    parse_all(text, file).map_err(|mut e| e.remove(0))
}

/// Parses one contract, reporting every mistake found.
pub fn parse_all(text: &str, file: &str) -> Result<Dataset, Vec<ContractError>> {
    parse_log(text, file, &[])
}

/// Parses one contract with the files of its kinds, if it splits a log (`(file shown,
/// stem, text)` each, in name order), reporting every mistake found.
pub fn parse_log(text: &str, file: &str, kinds: &[(String, String, String)]) -> Result<Dataset, Vec<ContractError>> {
    let raw: RawContract = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| locate(text, s.start)).unwrap_or((1, 1));
        vec![at(file, line, column, e.message().trim().to_string())]
    })?;
    let mut errors = Errors { text, file, list: Vec::new() };
    check_name(&raw.name, &mut errors);
    let name = raw.name.into_inner();
    // A split log may declare no envelope: its tables have their own columns.
    let mut fields = match raw.split_by.is_some() && raw.columns.is_empty() {
        true => Vec::new(),
        false => columns(raw.columns, text.len(), &mut errors),
    };
    let day = raw.day.and_then(|d| day_column(d, &fields, &mut errors));
    let unique = raw.unique.map(|u| unique_columns(u, &fields, &mut errors)).unwrap_or_default();
    let mode = raw.mode.and_then(|m| mode(m, &unique, &mut errors));
    let on_new_key = match raw.on_new_key {
        None => OnNewKey::Ignore,
        Some(o) => OnNewKey::from_name(o.get_ref()).unwrap_or_else(|| {
            errors.fail(o.span(), format!("on_new_key {:?}: one of ignore, evolve, reject", o.get_ref()));
            OnNewKey::Ignore
        }),
    };
    let prefix = raw.key_prefix.map(Spanned::into_inner).unwrap_or_default();
    let file_default = raw.file.map(Spanned::into_inner).unwrap_or_else(|| format!("{name}.json"));
    let mut kind_errors = Vec::new();
    if raw.split_by.is_some() && !raw.children.is_empty() {
        errors.fail(raw.children[0].span(), "a split log's child tables go in its kinds' files".into());
    }
    let children = child::read(raw.children, &name, &name, &mut fields, &unique, file, &mut errors);
    let mut checks = check::read(raw.checks, &[], &fields, day.as_deref(), check::Rejects::Own, &mut errors);
    // A split log's own checks check each of its tables (on the envelope's columns), but
    // reject_share, which measures the log's one rejects table, once for the log.
    let every_table: Vec<crate::checks::DeclaredCheck> = match raw.split_by.is_some() {
        true => {
            let (log, tables) = checks
                .into_iter()
                .partition(|c| matches!(c.measure, crate::checks::Measure::Metric(crate::checks::Metric::RejectShare(_))));
            checks = log;
            tables
        }
        false => Vec::new(),
    };
    let split = match raw.split_by {
        Some(by) => {
            let spec = split::LogSplit {
                on_new_key,
                by,
                unrouted: raw.unrouted,
                log: &name,
                file,
                prefix: &prefix,
                envelope: &fields,
                day: day.as_deref(),
                unique: &unique,
                checks: &every_table,
            };
            split::read(spec, kinds, &mut errors).map(|(split, e)| {
                kind_errors = e;
                split
            })
        }
        None => {
            if let Some(u) = raw.unrouted {
                errors.fail(u.span(), "unrouted applies to a split log (split_by)".into());
            }
            if !kinds.is_empty() {
                errors.fail(0..0, format!("{} has files of kinds in {name}/, but no split_by", file));
            }
            None
        }
    };
    errors.list.extend(kind_errors);
    if !errors.list.is_empty() {
        return Err(errors.list);
    }
    let mut ds = Dataset::new(name, file_default, prefix, fields, day, unique, file.to_string());
    ds.mode = mode;
    ds.on_new_key = on_new_key;
    ds.split = split;
    ds.set_children(children);
    ds.checks = checks;
    Ok(ds)
}

/// The dataset's name: tier names tables after it.
fn check_name(name: &Spanned<String>, errors: &mut Errors) {
    let text = name.get_ref();
    if !is_identifier(text) {
        errors.fail(name.span(), format!("name {text:?} must be a plain identifier (letters, digits, _; not starting with a digit)"));
    } else if text == crate::dataset::LEDGER || text.ends_with("_rejects") {
        errors.fail(name.span(), format!("name {text:?} is taken by tier's own tables"));
    } else if text.len() > MAX_NAME {
        errors.fail(
            name.span(),
            format!(
                "name {text:?} is {} characters; at most {MAX_NAME}: tier names tables after it (<name>_rejects__tier_new), and PostgreSQL cuts names at 63",
                text.len()
            ),
        );
    }
}

/// The `[[column]]`s as fields, each mistake reported; `end` is where "no columns" points.
fn columns(raw: Vec<Spanned<RawColumn>>, end: usize, errors: &mut Errors) -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    let mut key_owner: Vec<(String, String)> = Vec::new();
    let first_too_many = raw.get(MAX_COLUMNS).map(|c| c.span());
    for column in raw {
        if let Some(field) = column_field(column.into_inner(), &fields, &mut key_owner, errors) {
            fields.push(field);
        }
    }
    if fields.len() > MAX_COLUMNS {
        let span = first_too_many.unwrap_or(0..0);
        errors.fail(span, format!("{} columns; PostgreSQL allows {MAX_COLUMNS} besides tier's load_id", fields.len()));
    }
    if fields.is_empty() && errors.list.is_empty() {
        errors.fail(end..end, "no columns: declare at least one [[column]]".into());
    }
    fields
}

/// `day`: a timestamp or date column.
fn day_column(day: Spanned<String>, fields: &[Field], errors: &mut Errors) -> Option<String> {
    match fields.iter().find(|f| f.name == *day.get_ref()) {
        Some(f) if matches!(f.kind, Kind::Timestamp | Kind::Date) => Some(day.into_inner()),
        Some(f) => {
            errors.fail(day.span(), format!("day must name a timestamp or date column; {:?} is {}", f.name, f.kind.name()));
            None
        }
        None => {
            errors.fail(day.span(), format!("day names no declared column: {:?}", day.get_ref()));
            None
        }
    }
}

/// `unique`: declared scalar columns, each once.
fn unique_columns(u: Spanned<Vec<Spanned<String>>>, fields: &[Field], errors: &mut Errors) -> Vec<String> {
    let mut unique = Vec::new();
    if u.get_ref().is_empty() {
        errors.fail(u.span(), "unique must name at least one column (leave it out to compare whole rows)".into());
    }
    for col in u.into_inner() {
        if !fields.iter().any(|f| f.name == *col.get_ref()) {
            errors.fail(col.span(), format!("unique names no declared column: {:?}", col.get_ref()));
        } else if unique.contains(col.get_ref()) {
            errors.fail(col.span(), format!("unique names {:?} twice", col.get_ref()));
        } else if fields.iter().any(|f| f.name == *col.get_ref() && f.kind == Kind::Json) {
            // jsonb compares values, not texts (`{"a":1}` is `{"a": 1.0}`): a key the
            // client compares as the server's index does must be a scalar column.
            errors.fail(col.span(), format!("unique names {:?}, a json column; a key is made of scalar columns", col.get_ref()));
        } else {
            unique.push(col.into_inner());
        }
    }
    unique
}

/// `mode`: a merge needs `unique`.
fn mode(m: Spanned<String>, unique: &[String], errors: &mut Errors) -> Option<Mode> {
    let mode = Mode::from_name(m.get_ref());
    match mode {
        None => errors.fail(m.span(), format!("mode {:?}: one of replace, append, merge", m.get_ref())),
        Some(Mode::Merge) if unique.is_empty() => {
            errors.fail(m.span(), "mode \"merge\" needs `unique`: the columns that identify a row".into())
        }
        Some(_) => {}
    }
    mode
}

/// The mistakes found so far in one contract.
struct Errors<'a> {
    text: &'a str,
    file: &'a str,
    list: Vec<ContractError>,
}

impl Errors<'_> {
    fn fail(&mut self, span: std::ops::Range<usize>, message: String) {
        let (line, column) = locate(self.text, span.start);
        self.list.push(at(self.file, line, column, message));
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn locate(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

/// One `[[column]]` as a field, each mistake reported (`None` when its type is unknown);
/// `fields` are the columns before it, `key_owner` which column reads each key.
fn column_field(c: RawColumn, fields: &[Field], key_owner: &mut Vec<(String, String)>, errors: &mut Errors) -> Option<Field> {
    let column_name = c.name.get_ref().clone();
    if !is_identifier(&column_name) {
        errors.fail(c.name.span(), format!("column name {column_name:?} must be a plain identifier"));
    } else if column_name == "load_id" {
        errors.fail(c.name.span(), "column name \"load_id\" is tier's own (it links a row to its load)".into());
    } else if column_name.starts_with("__") {
        errors.fail(c.name.span(), format!("column name {column_name:?}: names starting with __ are tier's own"));
    } else if fields.iter().any(|f| f.name == column_name) {
        errors.fail(c.name.span(), format!("duplicate column {column_name:?}"));
    }
    let Some(kind) = Kind::from_name(c.kind.get_ref()) else {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        errors.fail(c.kind.span(), format!("unknown type {:?} (one of {})", c.kind.get_ref(), names.join(", ")));
        return None;
    };
    let key = match (&c.key, &c.message) {
        (_, Some(m)) => {
            if let Some(k) = &c.key {
                errors.fail(k.span(), "a column reads a key of the record or a part of its message, not both".into());
            }
            match crate::dataset::MessagePart::from_name(m.get_ref()) {
                Some(part) => Key::Message(part),
                None => {
                    let names: Vec<&str> = crate::dataset::MessagePart::ALL.iter().map(|p| p.name()).collect();
                    errors.fail(m.span(), format!("unknown message part {:?} (one of {})", m.get_ref(), names.join(", ")));
                    Key::Plain(column_name.clone())
                }
            }
        }
        (None, None) => Key::Plain(column_name.clone()),
        (Some(k), None) if k.get_ref().is_empty() => {
            errors.fail(k.span(), "key must not be empty".into());
            Key::Plain(column_name.clone())
        }
        (Some(k), None) if k.get_ref() == "*" => {
            if kind != Kind::Json {
                errors.fail(k.span(), format!("key \"*\" (every key no other column reads) is a json column, not {}", kind.name()));
            }
            Key::Rest
        }
        (Some(k), None) => Key::parse(k.get_ref()),
    };
    let shown_key = key.display();
    if let Some((_, owner)) = key_owner.iter().find(|(k, _)| *k == shown_key) {
        let span = c.key.as_ref().map(|k| k.span()).unwrap_or(c.name.span());
        errors.fail(span, format!("key {shown_key:?} is already read by column {owner:?}"));
    }
    key_owner.push((shown_key, column_name.clone()));

    let rules = column_rules(&c, kind, errors);
    let (timezone, format) = column_time(&c, kind, errors);
    Some(Field { name: column_name, key, kind, required: c.required, rules, timezone, format, evolved: false })
}

/// A column's rules (`min`, `max`, `allowed`, `pattern`, `max_length`), each checked against
/// the column's type.
fn column_rules(c: &RawColumn, kind: Kind, errors: &mut Errors) -> Rules {
    let mut rules = Rules::default();
    for (bound, slot) in [(&c.min, &mut rules.min), (&c.max, &mut rules.max)] {
        let Some(b) = bound else { continue };
        if !kind.is_numeric() {
            errors.fail(b.span(), format!("min / max apply to number columns, not {}", kind.name()));
            continue;
        }
        match decimal_text(b.get_ref()) {
            Some(text) => *slot = Some(text),
            None => errors.fail(b.span(), "min / max must be a number".into()),
        }
    }
    if let (Some(lo), Some(hi)) = (&rules.min, &rules.max) {
        if number::cmp_decimal(lo, hi) == std::cmp::Ordering::Greater {
            errors.fail(c.max.as_ref().expect("max given").span(), format!("max {hi} is below min {lo}"));
        }
    }
    if let Some(allowed) = &c.allowed {
        if !matches!(kind, Kind::Text | Kind::Integer | Kind::Bigint | Kind::Numeric) {
            errors.fail(allowed.span(), format!("allowed applies to text, integer, bigint and numeric columns, not {}", kind.name()));
        } else if allowed.get_ref().is_empty() {
            errors.fail(allowed.span(), "allowed must list at least one value".into());
        }
        for v in allowed.get_ref() {
            let text = match (kind, v) {
                (Kind::Text, toml::Value::String(s)) => Some(s.clone()),
                (Kind::Text, _) => None,
                (_, v) => decimal_text(v).filter(|t| kind == Kind::Numeric || matches!(number::parse_int(t, 64), number::Int::Value(_))),
            };
            match text {
                Some(t) => rules.allowed.push(t),
                None => {
                    errors.fail(allowed.span(), format!("allowed value {v} is not a {}", kind.name()));
                    break;
                }
            }
        }
    }
    if let Some(p) = &c.pattern {
        if kind != Kind::Text {
            errors.fail(p.span(), format!("pattern applies to text columns, not {}", kind.name()));
        } else if let Err(e) = regex::Regex::new(p.get_ref()) {
            errors.fail(
                p.span(),
                format!("pattern is not a valid regular expression: {}", e.to_string().lines().last().unwrap_or_default().trim()),
            );
        } else {
            rules.pattern = Some(p.get_ref().clone());
        }
    }
    if let Some(m) = &c.max_length {
        if kind != Kind::Text {
            errors.fail(m.span(), format!("max_length applies to text columns, not {}", kind.name()));
        } else if *m.get_ref() < 1 {
            errors.fail(m.span(), "max_length must be at least 1".into());
        } else {
            rules.max_length = Some(*m.get_ref() as usize);
        }
    }
    rules
}

/// How a timestamp or date column's values are written and read: `timezone`, `format`.
fn column_time(c: &RawColumn, kind: Kind, errors: &mut Errors) -> (Option<String>, timestamp::Format) {
    let mut timezone = None;
    if let Some(tz) = &c.timezone {
        if kind != Kind::Timestamp {
            errors.fail(tz.span(), format!("timezone applies to timestamp columns, not {}", kind.name()));
        } else if !timestamp::is_zone(tz.get_ref()) {
            errors.fail(tz.span(), format!("unknown time zone {:?} (an IANA name such as Europe/Oslo, or UTC)", tz.get_ref()));
        } else {
            timezone = Some(tz.get_ref().clone());
        }
    }
    let mut format = timestamp::Format::Iso;
    if let Some(f) = &c.format {
        if !matches!(kind, Kind::Timestamp | Kind::Date) {
            errors.fail(f.span(), format!("format applies to timestamp and date columns, not {}", kind.name()));
        } else {
            match timestamp::Format::named(f.get_ref()) {
                Ok(named) => format = named,
                Err(e) => errors.fail(f.span(), e),
            }
        }
    }
    (timezone, format)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

/// A TOML number or numeric string as decimal text, if it is one.
fn decimal_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) if f.is_finite() => Some(format!("{f}")),
        toml::Value::String(s) => number::parse_numeric(s).ok(),
        _ => None,
    }
}

/// A shipped example, for unit tests.
#[cfg(test)]
pub fn example(name: &str) -> &'static Dataset {
    use std::sync::OnceLock;
    static SETS: OnceLock<Vec<&'static Dataset>> = OnceLock::new();
    let sets = SETS.get_or_init(|| EXAMPLES.iter().map(|(file, text)| &*Box::leak(Box::new(parse(text, file).unwrap()))).collect());
    sets.iter().copied().find(|d| d.name == name).expect("a shipped example")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse(text, "d.toml").err().map(|e| e.to_string()).unwrap_or_else(|| "no error".into())
    }

    #[test]
    fn a_contract_reads_into_a_dataset() {
        let ds = parse(
            "name = \"weather\"\nfile = \"weather.json\"\nkey_prefix = \"weather_data.\"\nday = \"date_time\"\nunique = [\"city\", \"date_time\"]\n\
             [[column]]\nname = \"city\"\ntype = \"text\"\nrequired = true\n\
             [[column]]\nname = \"date_time\"\ntype = \"timestamp\"\nrequired = true\n\
             [[column]]\nname = \"humidity\"\nkey = \"currently_humidity\"\ntype = \"double\"\nmin = 0\nmax = 1\n\
             [[column]]\nname = \"preciptype\"\nkey = \"currently_preciptype\"\ntype = \"text\"\nallowed = [\"rain\", \"snow\"]\n",
            "weather.toml",
        )
        .unwrap();
        assert_eq!(ds.name, "weather");
        assert_eq!(ds.prefix, "weather_data.");
        assert_eq!(ds.day_field.as_deref(), Some("date_time"));
        assert_eq!(ds.unique, ["city", "date_time"]);
        assert_eq!(ds.fields[2].rules.min.as_deref(), Some("0"));
        assert_eq!(ds.fields[2].key, Key::Plain("currently_humidity".into()));
        assert_eq!(ds.fields[3].rules.allowed, ["rain", "snow"]);
    }

    #[test]
    fn every_kind_of_mistake_is_located() {
        let cases: &[(&str, &str)] = &[
            ("name = \"rides\"\n[[column]]\nname = \"a\"\ntype = \"texte\"\n", "d.toml:4:8: unknown type \"texte\""),
            ("name = \"rides\"\ncolour = 1\n[[column]]\nname = \"a\"\ntype = \"text\"\n", "d.toml:2:1: unknown field `colour`"),
            ("name = \"rides\"\n[[column]]\nname = \"a\"\ntype = \"text\"\n[[column]]\nname = \"a\"\ntype = \"text\"\n", "d.toml:6:8: duplicate column \"a\""),
            ("name = \"rides\"\n[[column]]\nname = \"a\"\ntype = \"text\"\nmin = 1\n", "d.toml:5:7: min / max apply to number columns, not text"),
            ("name = \"rides\"\n[[column]]\nname = \"a\"\ntype = \"text\"\nmessage = \"headers\"\n", "d.toml:5:11: unknown message part \"headers\" (one of topic, partition, offset, key, timestamp)"),
            ("name = \"rides\"\n[[column]]\nname = \"a\"\ntype = \"text\"\nkey = \"k\"\nmessage = \"key\"\n", "d.toml:5:7: a column reads a key of the record or a part of its message, not both"),
            ("name = \"rides\"\n[[column]]\nname = \"a\"\ntype = \"integer\"\npattern = \"x\"\n", "d.toml:5:11: pattern applies to text columns"),
            ("name = \"rides\"\n[[column]]\nname = \"a\"\ntype = \"text\"\npattern = \"(\"\n", "d.toml:5:11: pattern is not a valid regular expression"),
            ("name = \"rides\"\nday = \"a\"\n[[column]]\nname = \"a\"\ntype = \"text\"\n", "d.toml:2:7: day must name a timestamp or date column"),
            ("name = \"rides\"\nday = \"b\"\n[[column]]\nname = \"a\"\ntype = \"text\"\n", "d.toml:2:7: day names no declared column"),
            ("name = \"rides\"\nunique = [\"b\"]\n[[column]]\nname = \"a\"\ntype = \"text\"\n", "d.toml:2:11: unique names no declared column"),
            ("name = \"ri des\"\n[[column]]\nname = \"a\"\ntype = \"text\"\n", "d.toml:1:8: name \"ri des\" must be a plain identifier"),
            ("name = \"rides\"\n[[column]]\nname = \"a\"\ntype = \"double\"\nmin = 5\nmax = 1\n", "d.toml:6:7: max 1 is below min 5"),
            ("name = \"rides\"\n[[column]]\nname = \"a\"\ntype = \"integer\"\nallowed = [1, 2.5]\n", "d.toml:5:11: allowed value 2.5 is not a integer"),
            ("name = \"rides\"\n[[column]]\nname = \"a\"\ntype = \"timestamp\"\ntimezone = \"Mars/Base\"\n", "d.toml:5:12: unknown time zone"),
            ("name = \"rides\"\n[[column]]\nname = \"__row\"\ntype = \"text\"\n", "d.toml:3:8: column name \"__row\": names starting with __ are tier's own"),
            ("name = \"rides\"\n[[column]]\nname = \"a\"\ntype = \"text\"\nmax_length = 0\n", "d.toml:5:14: max_length must be at least 1"),
            ("name = \"rides\"\n[[column]]\nname = \"a\"\n", "d.toml:2:1: missing field `type`"),
            ("name = \"rides\"\n[[column]]\nname = \"a\"\nkey = \"x\"\ntype = \"text\"\n[[column]]\nname = \"b\"\nkey = \"x\"\ntype = \"text\"\n", "d.toml:8:7: key \"x\" is already read by column \"a\""),
            ("name = \"rides\"\n", "d.toml:2:1: no columns"),
            ("name = \"rides\"\n[[column]\n", "d.toml:2:"),
        ];
        for (text, want) in cases {
            let got = error(text);
            assert!(got.starts_with(want), "{text:?}\n  got:  {got}\n  want: {want}");
        }
    }

    #[test]
    fn the_shipped_examples_parse() {
        for (name, text) in EXAMPLES {
            let ds = parse(text, name).unwrap();
            assert_eq!(format!("{}.toml", ds.name), *name);
            assert!(ds.day_field.is_some());
        }
    }
}

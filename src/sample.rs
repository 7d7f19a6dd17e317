//! Sample data for any contract (`tier gen --dataset NAME`): records whose values fit each
//! column's type and rules, plus a planted share of every defect the contract's rules can
//! catch, and the `Planted` figures a correct load must report. Lets a user try a
//! contract before real data arrives. (The two shipped datasets keep `gen`, which writes
//! the original export's own defects.)

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use crate::dataset::{Dataset, Field, Key, Kind};
use crate::gen::Planted;
use crate::quality;
use crate::transform::parse::{BAD_VALUE, MALFORMED};
use crate::values::timestamp::civil_from_days;

/// 2019-05-13 00:00:00 UTC: sample times start here and move a few minutes a record.
const START: i64 = 1_557_705_600;

/// A defect a record can carry, and the reason a load gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Defect {
    Malformed,
    Missing(usize),
    /// A value of the wrong form for its type (bad_timestamp, bad_date, bad_number, bad_boolean).
    BadCast(usize),
    OutOfRange(usize),
    NotAllowed(usize),
    Pattern(usize),
    TooLong(usize),
    /// An object where a scalar belongs, or a NUL jsonb cannot store.
    BadValue(usize),
    Duplicate,
}

impl Defect {
    fn reason(self, ds: &Dataset) -> &'static str {
        match self {
            Defect::Malformed => MALFORMED,
            Defect::Missing(_) => quality::MISSING_REQUIRED,
            Defect::BadCast(f) => match ds.fields[f].kind {
                Kind::Timestamp => quality::BAD_TIMESTAMP,
                Kind::Date => quality::BAD_DATE,
                Kind::Boolean => quality::BAD_BOOLEAN,
                _ => quality::BAD_NUMBER,
            },
            Defect::OutOfRange(_) => quality::OUT_OF_RANGE,
            Defect::NotAllowed(_) => quality::NOT_ALLOWED,
            Defect::Pattern(_) => quality::PATTERN_MISMATCH,
            Defect::TooLong(_) => quality::TOO_LONG,
            Defect::BadValue(_) => BAD_VALUE,
            Defect::Duplicate => quality::DUPLICATE,
        }
    }
}

/// Where `gen --dataset` writes: the contract's `file` under `out` when it names one file,
/// else `sample.ndjson` in its directory (the part before any glob).
pub fn target(ds: &Dataset, out: &Path) -> PathBuf {
    let file = ds.file.as_str();
    if !file.contains(['*', '?', '[']) && !file.ends_with('/') && Path::new(file).extension().is_some() {
        return out.join(file);
    }
    let dir: String = file.split('/').take_while(|part| !part.contains(['*', '?', '['])).collect::<Vec<_>>().join("/");
    let gz = file.ends_with(".gz");
    out.join(dir).join(if gz { "sample.ndjson.gz" } else { "sample.ndjson" })
}

/// Writes `records` sample records (NDJSON, gzipped for a `.gz` name) and says what a
/// correct load of them reports.
pub fn generate(ds: &Dataset, records: u64, seed: u64, defect_share: f64, path: &Path) -> Result<Planted> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = std::fs::File::create(path).with_context(|| format!("{}: cannot write", path.display()))?;
    let mut out: Box<dyn Write> = if path.extension().is_some_and(|x| x == "gz") {
        Box::new(flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::fast()))
    } else {
        Box::new(std::io::BufWriter::new(file))
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tables = sample_tables(ds)?;
    let mut planted = Planted::default();
    let mut identities: HashSet<String> = HashSet::new();
    let mut last_accepted: Option<String> = None;
    let mut next_defect = 0usize;
    for n in 0..records {
        // A split log's records take its tables in turn, each with its kind.
        let (t, table) = ((n % tables.len() as u64) as usize, &tables[n as usize % tables.len()]);
        let (ds, patterns, defects) = (table.ds, &table.patterns, &table.defects);
        let kind = table.kind.as_deref().zip(table.by);
        let record = |rng: &mut ChaCha8Rng, defect| {
            let (line, identity) = record(ds, rng, n, defect, patterns, kind);
            (line, format!("{t}\u{2}{identity}"))
        };
        let defect = (rng.gen_bool(defect_share.clamp(0.0, 1.0)) && !defects.is_empty()).then(|| {
            next_defect += 1;
            defects[(next_defect - 1) % defects.len()]
        });
        let defect = match defect {
            Some(Defect::Duplicate) if last_accepted.is_none() => None,
            d => d,
        };
        let (line, identity) = match defect {
            Some(Defect::Duplicate) => (last_accepted.clone().expect("checked"), None),
            Some(Defect::Malformed) => {
                let whole = record(&mut rng, None).0;
                (whole[..whole.len() / 2].to_string(), None)
            }
            d => {
                let (line, identity) = record(&mut rng, d);
                (line, Some(identity))
            }
        };
        writeln!(out, "{line}")?;
        planted.records += 1;
        let reason = match (defect, identity) {
            (Some(d), _) => Some(d.reason(ds)),
            // A clean record that repeats an earlier one's identity is a duplicate too.
            (None, Some(id)) => (!identities.insert(id)).then_some(quality::DUPLICATE),
            (None, None) => None,
        };
        match reason {
            Some(r) => *planted.rejected.entry(r.to_string()).or_default() += 1,
            None => {
                planted.loaded += 1;
                last_accepted = Some(line);
            }
        }
    }
    out.flush()?;
    drop(out);
    Ok(planted)
}

/// One table sample records go to: its dataset, the kind value that routes a record there
/// (a split log's), its patterns and the defects its rules catch.
struct SampleTable<'a> {
    ds: &'a Dataset,
    kind: Option<String>,
    by: Option<&'a Key>,
    patterns: Vec<Option<regex::Regex>>,
    defects: Vec<Defect>,
}

/// The tables of `ds` (itself, or a split log's, the catch-all fed records of a kind no
/// table declares), each checked for sample values its patterns allow.
fn sample_tables(ds: &Dataset) -> Result<Vec<SampleTable<'_>>> {
    let tables: Vec<(&Dataset, Option<String>)> = match &ds.split {
        None => vec![(ds, None)],
        Some(split) => split
            .tables
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let kind = split.routes.iter().filter(|(_, &to)| to == i).map(|(k, _)| k.clone()).min();
                (&**t, Some(kind.unwrap_or_else(|| "__no_such_kind__".to_string())))
            })
            .collect(),
    };
    let by = ds.split.as_ref().map(|s| &s.by);
    let mut out = Vec::new();
    for (t, kind) in tables {
        let patterns: Vec<Option<regex::Regex>> =
            t.fields.iter().map(|f| f.rules.pattern.as_deref().map(|p| regex::Regex::new(p).expect("checked by the contract"))).collect();
        // Its child tables' elements too.
        for table in t.tables_here() {
            for f in &table.fields {
                let p = f.rules.pattern.as_deref().map(|p| regex::Regex::new(p).expect("checked by the contract"));
                if f.required && !f.is_set_by_tier() && value(f, &mut ChaCha8Rng::seed_from_u64(0), 0, p.as_ref()).is_none() {
                    return Err(crate::error::Failure::Input(format!(
                        "{}: cannot make sample values for column {:?} of {} that match its pattern {:?}",
                        t.source,
                        f.name,
                        table.name,
                        f.rules.pattern.as_deref().unwrap_or_default()
                    ))
                    .into());
                }
            }
        }
        let defects = applicable_defects(t, &patterns);
        out.push(SampleTable { ds: t, kind, by, patterns, defects });
    }
    Ok(out)
}

/// The defects this contract's rules can catch.
fn applicable_defects(ds: &Dataset, patterns: &[Option<regex::Regex>]) -> Vec<Defect> {
    let mut out = vec![Defect::Malformed, Defect::Duplicate];
    for (i, f) in ds.fields.iter().enumerate() {
        let r = &f.rules;
        if f.key == Key::Record || f.key == Key::Rest || f.is_set_by_tier() {
            continue;
        }
        if f.required {
            out.push(Defect::Missing(i));
        }
        if f.kind != Kind::Text && f.kind != Kind::Json {
            out.push(Defect::BadCast(i));
        }
        if r.min.is_some() || r.max.is_some() || matches!(f.kind, Kind::Integer | Kind::Bigint) {
            out.push(Defect::OutOfRange(i));
        }
        if !r.allowed.is_empty() {
            out.push(Defect::NotAllowed(i));
        }
        if f.kind == Kind::Text && r.allowed.is_empty() && patterns[i].as_ref().is_some_and(|p| !p.is_match(&non_matching(p))) {
            out.push(Defect::Pattern(i));
        }
        if f.kind == Kind::Text && r.max_length.is_some() && r.allowed.is_empty() && r.pattern.is_none() {
            out.push(Defect::TooLong(i));
        }
        if f.kind != Kind::Boolean {
            out.push(Defect::BadValue(i));
        }
    }
    out
}

/// One record as a JSON line, with `defect` planted, and its identity for the duplicate
/// check (its `unique` values, or the whole record).
fn record(
    ds: &Dataset,
    rng: &mut ChaCha8Rng,
    n: u64,
    defect: Option<Defect>,
    patterns: &[Option<regex::Regex>],
    kind: Option<(&str, &Key)>,
) -> (String, String) {
    let mut root = Map::new();
    let mut identity = Vec::new();
    if let Some((kind, by)) = kind {
        place(&mut root, ds, by, Value::String(kind.to_string()));
    }
    // A column of the same array as a child table holds the child's elements, unless a
    // defect is planted in it.
    let mut planted_in: Vec<&Key> = Vec::new();
    for (i, f) in ds.fields.iter().enumerate() {
        // A catch-all's whole record is the other columns' values; tier sets some columns;
        // the rest of the keys are the keys no column reads (none here).
        if f.key == Key::Record || f.key == Key::Rest || f.is_set_by_tier() {
            continue;
        }
        if ds.children.iter().any(|c| c.array == f.key) {
            let targeted = matches!(defect, Some(Defect::Missing(d) | Defect::BadCast(d) | Defect::BadValue(d)) if d == i);
            if !targeted {
                continue;
            }
            planted_in.push(&f.key);
        }
        let value = match defect {
            Some(Defect::Missing(d)) if d == i => None,
            Some(Defect::BadCast(d)) if d == i => Some(bad_cast(f)),
            Some(Defect::OutOfRange(d)) if d == i => Some(out_of_range(f)),
            Some(Defect::NotAllowed(d)) if d == i => Some(Value::String("__not_allowed__".into())),
            Some(Defect::Pattern(d)) if d == i => Some(Value::String(non_matching(patterns[i].as_ref().expect("a pattern")))),
            Some(Defect::TooLong(d)) if d == i => Some(Value::String("x".repeat(f.rules.max_length.unwrap_or(1) + 1))),
            Some(Defect::BadValue(d)) if d == i && f.kind == Kind::Json => Some(Value::String("\u{0}".into())),
            Some(Defect::BadValue(d)) if d == i => Some(serde_json::json!({"nested": true})),
            _ => value(f, rng, n, patterns[i].as_ref()),
        };
        if ds.unique.is_empty() || ds.unique.contains(&f.name) {
            identity.push(value.as_ref().map(Value::to_string).unwrap_or_default());
        }
        if let Some(v) = value {
            place(&mut root, ds, &f.key, v);
        }
    }
    for child in ds.children.iter().filter(|c| !planted_in.contains(&&c.array)) {
        place(&mut root, ds, &child.array, elements(child.ds, rng, n));
    }
    (Value::Object(root).to_string(), identity.join("\u{1}"))
}

/// A child table's array: up to three elements whose values fit its columns (scalars for a
/// column of the element itself), each with its own arrays.
fn elements(ds: &Dataset, rng: &mut ChaCha8Rng, n: u64) -> Value {
    let count = rng.gen_range(0..4);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        if let Some(f) = ds.fields.iter().find(|f| f.key == Key::Record) {
            out.push(value(f, rng, n, None).unwrap_or(Value::Null));
            continue;
        }
        let mut element = Map::new();
        for f in ds.fields.iter().filter(|f| !f.is_set_by_tier()) {
            let pattern = f.rules.pattern.as_deref().and_then(|p| regex::Regex::new(p).ok());
            if let Some(v) = value(f, rng, n, pattern.as_ref()) {
                place(&mut element, ds, &f.key, v);
            }
        }
        for child in &ds.children {
            place(&mut element, ds, &child.array, elements(child.ds, rng, n));
        }
        out.push(Value::Object(element));
    }
    Value::Array(out)
}

/// Puts a value where the column's key says: a prefixed top-level key, or a nested path.
fn place(root: &mut Map<String, Value>, ds: &Dataset, key: &Key, v: Value) {
    match key {
        Key::Plain(k) => {
            root.insert(format!("{}{k}", ds.prefix), v);
        }
        // A catch-all table's whole record: the other columns make it; tier sets the others.
        Key::Record | Key::Parent(_) | Key::Position | Key::Rest | Key::Message(_) => {}
        Key::Pointer(parts) => {
            let mut node = root;
            let head = format!("{}{}", ds.prefix, parts[0]);
            let mut path = std::iter::once(head).chain(parts[1..].iter().cloned()).peekable();
            while let Some(step) = path.next() {
                if path.peek().is_none() {
                    node.insert(step, v);
                    return;
                }
                let entry = node.entry(step).or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                node = entry.as_object_mut().expect("an object");
            }
        }
    }
}

/// A value that fits the column's type and rules; `None` (absent) for optional columns
/// now and then, and where no fitting value can be made.
fn value(f: &Field, rng: &mut ChaCha8Rng, n: u64, pattern: Option<&regex::Regex>) -> Option<Value> {
    if !f.required && rng.gen_bool(0.1) {
        return None;
    }
    let r = &f.rules;
    if !r.allowed.is_empty() {
        let pick = &r.allowed[rng.gen_range(0..r.allowed.len())];
        return Some(match f.kind {
            Kind::Text => Value::String(pick.clone()),
            _ => serde_json::from_str(pick).unwrap_or(Value::String(pick.clone())),
        });
    }
    let (lo, hi) = bounds(f);
    Some(match f.kind {
        Kind::Text => {
            let candidates = [format!("{}-{n}", f.name), format!("user{n}@example.com"), n.to_string(), format!("A{n}"), "a".to_string()];
            let mut text = candidates.into_iter().find(|c| pattern.is_none_or(|p| p.is_match(c)))?;
            if let Some(m) = r.max_length {
                text = text.chars().take(m).collect();
                if pattern.is_some_and(|p| !p.is_match(&text)) {
                    return None;
                }
            }
            Value::String(text)
        }
        Kind::Integer | Kind::Bigint => {
            let (lo, hi) = (lo.ceil() as i64, hi.floor() as i64);
            Value::from(if lo <= hi { rng.gen_range(lo..=hi) } else { lo })
        }
        Kind::Double => Value::from(((lo + rng.gen::<f64>() * (hi - lo)) * 1000.0).round() / 1000.0),
        Kind::Numeric => {
            let cents = rng.gen_range((lo * 100.0).ceil() as i64..=((hi * 100.0).floor() as i64).max((lo * 100.0).ceil() as i64));
            Value::String(format!("{}{}.{:02}", if cents < 0 { "-" } else { "" }, cents.abs() / 100, cents.abs() % 100))
        }
        Kind::Boolean => Value::Bool(rng.gen_bool(0.5)),
        Kind::Timestamp => written(START + n as i64 * 97 + rng.gen_range(0..60), &f.format, false),
        Kind::Date => written((START + n as i64 * 97).div_euclid(86_400) * 86_400, &f.format, true),
        Kind::Json => serde_json::json!({"n": n, "tags": ["a", format!("b{}", n % 3)]}),
    })
}

/// The column's bounds (inclusive) as doubles, with defaults where the contract sets none.
fn bounds(f: &Field) -> (f64, f64) {
    let parse = |s: &Option<String>| s.as_deref().and_then(|t| t.parse::<f64>().ok());
    match (parse(&f.rules.min), parse(&f.rules.max)) {
        (Some(lo), Some(hi)) => (lo, hi),
        (Some(lo), None) => (lo, lo + 1000.0),
        (None, Some(hi)) => (hi - 1000.0, hi),
        (None, None) => (0.0, 1000.0),
    }
}

/// A value outside the bounds (or, for integers without bounds, not whole).
fn out_of_range(f: &Field) -> Value {
    let whole = matches!(f.kind, Kind::Integer | Kind::Bigint);
    match (&f.rules.max, &f.rules.min) {
        (Some(hi), _) => number_above(hi, whole),
        (None, Some(lo)) => number_below(lo, whole),
        (None, None) => Value::from(3.5),
    }
}

fn number_above(bound: &str, whole: bool) -> Value {
    let v = bound.parse::<f64>().unwrap_or(0.0);
    if whole {
        Value::from(v.floor() as i64 + 1)
    } else {
        Value::String(format!("{}", v + v.abs().max(1.0)))
    }
}

fn number_below(bound: &str, whole: bool) -> Value {
    let v = bound.parse::<f64>().unwrap_or(0.0);
    if whole {
        Value::from(v.ceil() as i64 - 1)
    } else {
        Value::String(format!("{}", v - v.abs().max(1.0)))
    }
}

/// A text the pattern does not match.
fn non_matching(p: &regex::Regex) -> String {
    // Not blank: a blank required text is missing, not a mismatch.
    ["!!", "0", "a", "ZZZZ", "-", "x y"].iter().find(|c| !p.is_match(c)).map(|c| c.to_string()).unwrap_or_else(|| "\u{1}".into())
}

/// A value of the wrong form for the column's type and format (a timestamp in another
/// format's form is wrong too: what a house format looks like when an export changes).
fn bad_cast(f: &Field) -> Value {
    use crate::values::timestamp::Format;
    Value::String(
        match (f.kind, &f.format) {
            (Kind::Timestamp | Kind::Date, Format::Epoch(_)) => "2019-05-13T14:23:41Z",
            // The weekday is not the date's.
            (Kind::Timestamp | Kind::Date, Format::Rfc2822) => "Tue, 13 May 2019 14:23:41 GMT",
            (Kind::Timestamp | Kind::Date, Format::Pattern(_)) => "2019-05-13T14:23:41Z and more",
            (Kind::Timestamp, Format::Iso) => "not a time",
            (Kind::Date, Format::Iso) => "13.05.2019",
            (Kind::Boolean, _) => "maybe",
            _ => "many",
        }
        .into(),
    )
}

/// An instant (seconds since 1970, UTC) written in a column's format; `date` for a date
/// column (epochs then at midnight).
fn written(unix: i64, format: &crate::values::timestamp::Format, date: bool) -> Value {
    use crate::values::timestamp::{EpochUnit, Format};
    let utc = chrono::DateTime::from_timestamp(unix, 0).expect("an instant in range");
    match format {
        Format::Iso if date => Value::String(utc.format("%Y-%m-%d").to_string()),
        Format::Iso => Value::String(iso(unix)),
        Format::Epoch(EpochUnit::Seconds) => Value::from(unix),
        Format::Epoch(EpochUnit::Millis) => Value::from(unix * 1000),
        // Microseconds as text, as exports write numbers a double cannot hold exactly.
        Format::Epoch(EpochUnit::Micros) => Value::String((unix * 1_000_000).to_string()),
        Format::Rfc2822 => Value::String(utc.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
        Format::Pattern(p) => Value::String(utc.format(p).to_string()),
    }
}

fn iso(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

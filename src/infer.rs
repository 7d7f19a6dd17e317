//! Exports -> a contract: every record of every file is read (the load's own framing
//! reader, records parsed on all cores), and each key's values are profiled: how often it
//! is present and null, how many distinct values it has, its range, and the narrowest
//! type every present value fits. Nested objects become JSON Pointer keys (to a depth of
//! three); arrays, and objects deeper than that, become `json` columns.
//!
//! The contract written loads every record it was inferred from that parses (tested as a
//! property on generated records): a key that holds an object in some records and a
//! scalar or an array in others is one `json` column holding each value whole (its fields
//! are not columns), a key that is an object or null has only its fields' columns, and a
//! text that is ever blank is not `required` (the load counts a blank required text as
//! missing).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use rayon::prelude::*;
use serde::de::Deserializer;
use serde_json::value::RawValue;

use crate::dataset::Kind;
use crate::source::RecordReader;
use crate::values::{number, timestamp};

pub mod split;

/// Objects nested deeper than this are kept whole, as `json`.
const MAX_DEPTH: usize = 3;
/// Distinct values counted exactly up to this many per column.
const DISTINCT_CAP: usize = 10_000;
/// Columns with at most this many distinct values list them (a suggestion for `allowed`).
const FEW_VALUES: usize = 8;

/// What one column's values were like.
#[derive(Debug, Clone, Default)]
pub struct ColumnProfile {
    /// Records where the key was there with a non-null value.
    pub present: u64,
    /// Records where it was there as null.
    pub nulls: u64,
    /// Records where it was an object whose fields became columns of their own (not
    /// counted in `present`).
    pub objects: u64,
    /// Strings that are empty or only whitespace.
    pub blanks: u64,
    /// NaN numbers (stored as NULL).
    pub nans: u64,
    /// Which types every present value fits so far.
    pub fits: Fits,
    /// Values that fit no narrower type than text, for the comments (up to three).
    pub examples_not_narrower: Vec<String>,
    pub distinct: HashSet<String, ahash::RandomState>,
    pub distinct_overflow: bool,
    /// The smallest and largest number (as a double, and its canonical decimal), timestamp
    /// (micros) or length.
    pub min_number: Option<(f64, String)>,
    pub max_number: Option<(f64, String)>,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    pub min_len: Option<usize>,
    pub max_len: Option<usize>,
    /// Values of each narrower kind, counted (to say "98% are timestamps").
    pub timestamps: u64,
    pub numbers: u64,
    /// Records where it was an array (counted in `present` too).
    pub arrays: u64,
}

/// The types every value seen fits (all true before the first value).
#[derive(Debug, Clone, Copy)]
pub struct Fits {
    pub integer: bool,
    pub bigint: bool,
    pub double: bool,
    pub boolean: bool,
    pub timestamp: bool,
    pub date: bool,
    pub json: bool,
    /// Which of `TIME_FORMATS` and `DATE_FORMATS` every value fits (a bit each).
    pub time_formats: u32,
    pub date_formats: u32,
}

impl Default for Fits {
    fn default() -> Self {
        Fits {
            integer: true,
            bigint: true,
            double: true,
            boolean: true,
            timestamp: true,
            date: true,
            json: false,
            time_formats: (1 << TIME_FORMATS.len()) - 1,
            date_formats: (1 << DATE_FORMATS.len()) - 1,
        }
    }
}

impl Fits {
    /// Fits nothing narrower than text (and, with `json`, is kept as JSON).
    fn none(json: bool) -> Fits {
        Fits {
            integer: false,
            bigint: false,
            double: false,
            boolean: false,
            timestamp: false,
            date: false,
            json,
            time_formats: 0,
            date_formats: 0,
        }
    }
}

/// The forms besides ISO 8601 that inference tries on timestamp-like strings, in order of
/// preference: RFC 2822 (HTTP dates) and the house formats exports write.
const TIME_FORMATS: [&str; 8] = [
    "rfc2822",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
];
const DATE_FORMATS: [&str; 4] = ["%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y"];

/// The formats of a list, parsed once.
fn formats(names: &'static [&'static str]) -> Vec<timestamp::Format> {
    names.iter().map(|n| timestamp::Format::named(n).expect("a valid format")).collect()
}

static TIME: std::sync::LazyLock<Vec<timestamp::Format>> = std::sync::LazyLock::new(|| formats(&TIME_FORMATS));
static DATE: std::sync::LazyLock<Vec<timestamp::Format>> = std::sync::LazyLock::new(|| formats(&DATE_FORMATS));

/// Keeps the bits of `fits` whose format reads `text`; the first one's reading.
fn fitting<T>(fits: &mut u32, all: &[timestamp::Format], text: &str, parse: impl Fn(&str, &timestamp::Format) -> Option<T>) -> Option<T> {
    let mut first = None;
    for (i, format) in all.iter().enumerate() {
        if *fits & (1 << i) != 0 {
            match parse(text, format) {
                Some(v) => {
                    first.get_or_insert(v);
                }
                None => *fits &= !(1 << i),
            }
        }
    }
    first
}

/// The first format whose bit is set, and the others that fit too.
fn chosen(fits: u32, names: &[&'static str]) -> Option<(&'static str, Vec<&'static str>)> {
    let mut set = names.iter().enumerate().filter(|(i, _)| fits & (1 << i) != 0).map(|(_, n)| *n);
    set.next().map(|first| (first, set.collect()))
}

impl ColumnProfile {
    /// The narrowest type every present value fits.
    pub fn kind(&self) -> Kind {
        let f = self.fits;
        if f.json {
            return Kind::Json;
        }
        if self.present == 0 {
            return Kind::Text;
        }
        if f.boolean {
            Kind::Boolean
        } else if f.integer {
            Kind::Integer
        } else if f.bigint {
            Kind::Bigint
        } else if f.double {
            Kind::Double
        } else if f.date {
            Kind::Date
        } else if f.timestamp {
            Kind::Timestamp
        } else if f.date_formats != 0 {
            Kind::Date
        } else if f.time_formats != 0 {
            Kind::Timestamp
        } else {
            Kind::Text
        }
    }

    /// The `format` a timestamp or date column needs, when ISO 8601 does not read every
    /// value, and the other formats that would read them all too.
    pub fn format(&self) -> Option<(&'static str, Vec<&'static str>)> {
        match self.kind() {
            Kind::Date if !self.fits.date => chosen(self.fits.date_formats, &DATE_FORMATS),
            Kind::Timestamp if !self.fits.timestamp => chosen(self.fits.time_formats, &TIME_FORMATS),
            _ => None,
        }
    }

    fn add(&mut self, value: Value) {
        match value {
            Value::Null => self.nulls += 1,
            Value::Container(text) => {
                self.present += 1;
                self.fits = Fits::none(true);
                self.note_distinct(text);
            }
            Value::Bool(b) => {
                self.present += 1;
                let f = &mut self.fits;
                (f.integer, f.bigint, f.double, f.timestamp, f.date) = (false, false, false, false, false);
                (f.time_formats, f.date_formats) = (0, 0);
                self.note_distinct(if b { "true" } else { "false" });
            }
            Value::Number(text) => self.add_scalar(text, false),
            Value::Text(text) => self.add_scalar(text, true),
        }
    }

    /// A number, or a string (`quoted`): which types it fits, its range and its length.
    fn add_scalar(&mut self, text: &str, quoted: bool) {
        self.present += 1;
        if quoted && text.trim().is_empty() {
            self.blanks += 1;
        }
        self.note_distinct(text);
        let chars = text.chars().count();
        self.min_len = Some(self.min_len.map_or(chars, |m| m.min(chars)));
        self.max_len = Some(self.max_len.map_or(chars, |m| m.max(chars)));
        let f = &mut self.fits;
        // A JSON string "true" is a boolean to the cast; a number never is.
        f.boolean &= quoted && matches!(text.trim(), "true" | "false");
        let int = number::parse_int(text, 64);
        let whole = matches!(int, number::Int::Value(_));
        f.bigint &= whole;
        f.integer &= matches!(int, number::Int::Value(v) if i32::try_from(v).is_ok());
        let double = number::parse_float(text);
        match double {
            number::Float::Value(x) => {
                self.numbers += 1;
                // The exact text is kept only when a bound moves (compared as doubles
                // first, exactly where they tie).
                let lower = self.min_number.as_ref().is_none_or(|(m, t)| x < *m || (x == *m && exact_cmp(text, t).is_lt()));
                let higher = self.max_number.as_ref().is_none_or(|(m, t)| x > *m || (x == *m && exact_cmp(text, t).is_gt()));
                if lower || higher {
                    if let Ok(canonical) = number::parse_numeric(text) {
                        if lower {
                            self.min_number = Some((x, canonical.clone()));
                        }
                        if higher {
                            self.max_number = Some((x, canonical));
                        }
                    }
                }
            }
            number::Float::NaN => {
                self.numbers += 1;
                self.nans += 1;
            }
            number::Float::Invalid => f.double = false,
        }
        if matches!(double, number::Float::NaN) {
            f.integer = false;
            f.bigint = false;
        }
        let date = quoted.then(|| timestamp::parse_date(text)).flatten();
        f.date &= date.is_some();
        let instant = quoted.then(|| timestamp::parse_micros(text)).flatten();
        f.timestamp &= instant.is_some();
        if !quoted {
            (f.time_formats, f.date_formats) = (0, 0);
        }
        // The other forms, while any still reads every value (most columns drop
        // them all at their first value).
        let other_date = fitting(&mut f.date_formats, &DATE, text, timestamp::parse_date_as);
        let other_instant = fitting(&mut f.time_formats, &TIME, text, |t, fmt| timestamp::parse_timestamp(t, fmt, None));
        let date = date.or(other_date);
        if let Some(t) = instant.or(other_instant).or(date.map(|d| d as i64 * 86_400_000_000)) {
            self.timestamps += 1;
            self.min_time = Some(self.min_time.map_or(t, |m| m.min(t)));
            self.max_time = Some(self.max_time.map_or(t, |m| m.max(t)));
        }
        let as_time = f.timestamp || f.date || f.time_formats != 0 || f.date_formats != 0;
        if !(f.boolean || f.double || as_time) && self.examples_not_narrower.len() < 3 {
            let shown: String = text.chars().take(40).collect();
            if !self.examples_not_narrower.contains(&shown) {
                self.examples_not_narrower.push(shown);
            }
        }
    }

    fn note_distinct(&mut self, text: &str) {
        if self.distinct_overflow {
            return;
        }
        if self.distinct.len() >= DISTINCT_CAP && !self.distinct.contains(text) {
            self.distinct_overflow = true;
            self.distinct.clear();
            return;
        }
        if !self.distinct.contains(text) {
            self.distinct.insert(text.to_string());
        }
    }

    fn merge(&mut self, other: ColumnProfile) {
        self.present += other.present;
        self.nulls += other.nulls;
        self.objects += other.objects;
        self.arrays += other.arrays;
        self.blanks += other.blanks;
        self.nans += other.nans;
        let (a, b) = (&mut self.fits, other.fits);
        a.integer &= b.integer;
        a.bigint &= b.bigint;
        a.double &= b.double;
        a.boolean &= b.boolean;
        a.timestamp &= b.timestamp;
        a.date &= b.date;
        a.time_formats &= b.time_formats;
        a.date_formats &= b.date_formats;
        a.json |= b.json;
        for e in other.examples_not_narrower {
            if self.examples_not_narrower.len() < 3 && !self.examples_not_narrower.contains(&e) {
                self.examples_not_narrower.push(e);
            }
        }
        if other.distinct_overflow {
            self.distinct_overflow = true;
            self.distinct.clear();
        } else {
            for v in other.distinct {
                self.note_distinct(&v);
            }
        }
        for (mine, theirs, less) in [(&mut self.min_number, other.min_number, true), (&mut self.max_number, other.max_number, false)] {
            if let Some(t) = theirs {
                let order = mine.as_ref().map(|m| number::cmp_decimal(&t.1, &m.1));
                if order.is_none_or(|o| if less { o.is_lt() } else { o.is_gt() }) {
                    *mine = Some(t);
                }
            }
        }
        self.min_time = opt(self.min_time, other.min_time, i64::min);
        self.max_time = opt(self.max_time, other.max_time, i64::max);
        self.min_len = opt(self.min_len, other.min_len, usize::min);
        self.max_len = opt(self.max_len, other.max_len, usize::max);
        self.timestamps += other.timestamps;
        self.numbers += other.numbers;
    }
}

/// When most of a text column's values fit a narrower type, says how many and which did
/// not: a person decides whether the rest are defects (to reject) or real values.
fn narrower_note(blocks: &mut String, kind: Kind, col: &ColumnProfile) {
    if kind != Kind::Text || col.present == 0 {
        return;
    }
    let share = |n: u64| n as f64 / col.present as f64;
    if share(col.timestamps) >= 0.9 {
        let _ = writeln!(
            blocks,
            "# {} of values are timestamps; the rest (e.g. {}) keep this column text",
            percent(col.timestamps, col.present),
            col.examples_not_narrower.iter().map(|e| toml_string(e)).collect::<Vec<_>>().join(", ")
        );
    } else if share(col.numbers) >= 0.9 {
        let _ = writeln!(
            blocks,
            "# {} of values are numbers; the rest (e.g. {}) keep this column text",
            percent(col.numbers, col.present),
            col.examples_not_narrower.iter().map(|e| toml_string(e)).collect::<Vec<_>>().join(", ")
        );
    }
}

/// Numbers that all read as epoch seconds, milliseconds or microseconds of 1990 to 2100
/// (the first unit that fits): the unit and the instants of the smallest and largest.
fn epoch_reading(kind: Kind, col: &ColumnProfile) -> Option<(&'static str, &'static str, i64, i64)> {
    use timestamp::EpochUnit;
    if !matches!(kind, Kind::Integer | Kind::Bigint | Kind::Double) {
        return None;
    }
    let (Some((_, lo)), Some((_, hi))) = (&col.min_number, &col.max_number) else { return None };
    // 1990-01-01 and 2100-01-01 UTC.
    let plausible = 631_152_000_000_000..4_102_444_800_000_000;
    let units = [
        (EpochUnit::Seconds, "seconds", "epoch_s"),
        (EpochUnit::Millis, "milliseconds", "epoch_ms"),
        (EpochUnit::Micros, "microseconds", "epoch_us"),
    ];
    units.into_iter().find_map(|(unit, name, format)| {
        let (lo, hi) = (timestamp::parse_epoch(lo, unit)?, timestamp::parse_epoch(hi, unit)?);
        (plausible.contains(&lo) && plausible.contains(&hi)).then_some((name, format, lo, hi))
    })
}

/// Whether the key `key` (a top-level key or a JSON Pointer) is a field below `parent`.
fn is_below(key: &str, parent: &str) -> bool {
    let parent_pointer = match parent.starts_with('/') {
        true => parent.to_string(),
        false => format!("/{}", parent.replace('~', "~0").replace('/', "~1")),
    };
    key.strip_prefix(parent_pointer.as_str()).is_some_and(|rest| rest.starts_with('/'))
}

/// Two numeric texts compared exactly (an unreadable one: equal, keeping the old bound).
fn exact_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match number::parse_numeric(a) {
        Ok(a) => number::cmp_decimal(&a, b),
        Err(_) => std::cmp::Ordering::Equal,
    }
}

fn opt<T: Copy>(a: Option<T>, b: Option<T>, f: fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// A value as inference sees it.
enum Value<'a> {
    Null,
    Bool(bool),
    Number(&'a str),
    Text(&'a str),
    /// An array, or an object nested too deep: kept as JSON text.
    Container(&'a str),
}

/// What all records said.
#[derive(Debug, Default, Clone)]
pub struct Profile {
    pub records: u64,
    /// Records that are not JSON objects (they would be rejected as `malformed`).
    pub malformed: u64,
    /// Per key (a top-level key, or a JSON Pointer), in first-seen order.
    pub columns: Vec<(String, ColumnProfile)>,
    index: std::collections::HashMap<String, usize, ahash::RandomState>,
    /// Per key that held arrays, what their elements were like: each element a record of
    /// its own (a scalar one under the key `.`), profiled `child_depth - 1` levels down.
    pub arrays: Vec<(String, Profile)>,
    /// How many levels of arrays below this one are profiled (0: arrays are json values).
    pub child_depth: usize,
}

impl Profile {
    /// An empty profile that profiles arrays `child_depth` levels down.
    pub fn with_depth(child_depth: usize) -> Profile {
        Profile { child_depth, ..Profile::default() }
    }

    /// The elements' profile of the arrays at `key`.
    fn array(&mut self, key: &str) -> &mut Profile {
        let i = match self.arrays.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                self.arrays.push((key.to_string(), Profile::with_depth(self.child_depth.saturating_sub(1))));
                self.arrays.len() - 1
            }
        };
        &mut self.arrays[i].1
    }

    /// One array's elements, each a record.
    fn add_elements(&mut self, items: &[&RawValue]) {
        for item in items {
            self.records += 1;
            match item.get().starts_with('{') {
                true => match object_entries(item.get()) {
                    Ok(entries) => self.add_object(&entries, "", 1),
                    Err(_) => self.malformed += 1,
                },
                false => self.add_object(&[(Cow::Borrowed("."), *item)], "", 1),
            }
        }
    }

    fn column(&mut self, key: &str) -> &mut ColumnProfile {
        let i = match self.index.get(key) {
            Some(&i) => i,
            None => {
                self.columns.push((key.to_string(), ColumnProfile::default()));
                self.index.insert(key.to_string(), self.columns.len() - 1);
                self.columns.len() - 1
            }
        };
        &mut self.columns[i].1
    }

    /// A key's profile.
    pub fn get(&self, key: &str) -> Option<&ColumnProfile> {
        self.index.get(key).map(|&i| &self.columns[i].1)
    }

    fn add_record(&mut self, bytes: &[u8]) {
        self.records += 1;
        let parsed = std::str::from_utf8(bytes).ok().and_then(|text| object_entries(text).ok());
        match parsed {
            Some(entries) => self.add_object(&entries, "", 1),
            None => {
                // The export's bare NaN (not JSON): a number to inference, as to the load.
                let patched = crate::transform::record::quote_bare_tokens(bytes).map(|(p, _)| p);
                let entries = patched.as_deref().and_then(|p| std::str::from_utf8(p).ok()).and_then(|text| object_entries(text).ok());
                match entries {
                    Some(entries) => self.add_object(&entries, "", 1),
                    None => self.malformed += 1,
                }
            }
        }
    }

    fn add_object(&mut self, entries: &[(Cow<'_, str>, &RawValue)], path: &str, depth: usize) {
        for (key, raw) in entries {
            let text = raw.get();
            // Top-level keys stay plain (they may hold dots); nested ones become pointers.
            let nested_name = || format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"));
            let name: Cow<'_, str> = if depth == 1 { Cow::Borrowed(key) } else { Cow::Owned(nested_name()) };
            let value = match text.as_bytes()[0] {
                b'{' if depth < MAX_DEPTH => match object_entries(text) {
                    Ok(inner) => {
                        self.column(&name).objects += 1;
                        let base = if depth == 1 { nested_name() } else { name.to_string() };
                        self.add_object(&inner, &base, depth + 1);
                        continue;
                    }
                    Err(_) => Value::Container(text),
                },
                b'[' if self.child_depth > 0 => {
                    if let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) {
                        self.array(&name).add_elements(&items);
                    }
                    self.column(&name).arrays += 1;
                    Value::Container(text)
                }
                b'{' | b'[' => Value::Container(text),
                b'n' => Value::Null,
                b't' => Value::Bool(true),
                b'f' => Value::Bool(false),
                b'"' if !text.contains('\\') => Value::Text(&text[1..text.len() - 1]),
                b'"' => {
                    let s: String = serde_json::from_str(text).unwrap_or_default();
                    self.column(&name).add(Value::Text(&s));
                    continue;
                }
                _ => Value::Number(text),
            };
            self.column(&name).add(value);
        }
    }

    fn merge(&mut self, other: Profile) {
        self.records += other.records;
        self.malformed += other.malformed;
        for (key, col) in other.columns {
            self.column(&key).merge(col);
        }
        for (key, elements) in other.arrays {
            self.array(&key).merge(elements);
        }
    }
}

/// A record's top-level entries (the export's `NaN` tokens read as numbers).
fn object_entries(text: &str) -> Result<Vec<(Cow<'_, str>, &RawValue)>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let entries = de.deserialize_map(crate::transform::record::Entries)?;
    de.end()?;
    Ok(entries)
}

/// Reads every record of `files` and profiles them, arrays `child_depth` levels down.
pub fn profile(files: &[PathBuf], child_depth: usize) -> Result<Profile> {
    let inputs: Vec<crate::source::Input> = files.iter().map(|p| crate::source::Input::File(p.clone())).collect();
    profile_inputs(&inputs, child_depth)
}

/// Reads every record of `inputs` (files or objects) and profiles them, arrays
/// `child_depth` levels down.
pub fn profile_inputs(inputs: &[crate::source::Input], child_depth: usize) -> Result<Profile> {
    fold_records(
        inputs,
        || Profile::with_depth(child_depth),
        |p, chunk, spans| {
            for span in spans {
                if span.damage.is_some() {
                    p.records += 1;
                    p.malformed += 1;
                } else {
                    p.add_record(chunk.bytes(span));
                }
            }
        },
        |a, b| a.merge(b),
    )
}

/// Folds every record of `inputs` into one `A`: each chunk's records on all cores, in
/// blocks of 2,048 (`add` takes a block), one accumulator per rayon split (not per task:
/// merging is the costly part), then merged into the total.
pub(crate) fn fold_records<A: Send>(
    inputs: &[crate::source::Input],
    new: impl Fn() -> A + Sync + Send,
    add: impl Fn(&mut A, &crate::source::Chunk, &[crate::source::Span]) + Sync + Send,
    merge: impl Fn(&mut A, A) + Sync + Send,
) -> Result<A> {
    let mut total = new();
    for input in inputs {
        let mut reader = RecordReader::open_input(input)?;
        while let Some(chunk) = reader.next_chunk()? {
            let part = chunk
                .spans
                .par_chunks(2048)
                .fold(&new, |mut acc, spans| {
                    add(&mut acc, &chunk, spans);
                    acc
                })
                .reduce(&new, |mut a, b| {
                    merge(&mut a, b);
                    a
                });
            merge(&mut total, part);
        }
    }
    Ok(total)
}

/// The prefix ending in `.` that most top-level keys carry (`segment_tracks.`): more than
/// half of them, as exports write a few keys without it.
fn dominant_prefix(keys: &[&str]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for k in keys {
        if let Some(dot) = k.find('.') {
            if dot + 1 < k.len() {
                *counts.entry(&k[..=dot]).or_default() += 1;
            }
        }
    }
    match counts.into_iter().max_by_key(|(_, n)| *n) {
        Some((prefix, n)) if n * 2 > keys.len() => prefix.to_string(),
        _ => String::new(),
    }
}

/// A column name from a key: snake_case, letters, digits and `_` only.
pub fn column_name(key: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in key.trim_start_matches('/').chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            if !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = false;
        }
    }
    let out = out.trim_matches('_').to_string();
    match out.chars().next() {
        None => "column".to_string(),
        Some(c) if c.is_ascii_digit() => format!("c_{out}"),
        _ if out == "load_id" => "source_load_id".to_string(),
        _ => out.chars().take(63).collect(),
    }
}

/// `name`, or, when `taken` says it is, the first of `name_2`, `name_3`, ... that is not,
/// each cut to fit PostgreSQL's 63 bytes (where a longer name would be cut and collide).
pub fn distinct_name(name: &str, taken: impl Fn(&str) -> bool) -> String {
    const MAX: usize = 63;
    let cut = |s: &str, room: usize| -> String {
        s.chars()
            .scan(0, |len, c| {
                *len += c.len_utf8();
                (*len <= room).then_some(c)
            })
            .collect()
    };
    let base = cut(name, MAX);
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| {
            let suffix = format!("_{n}");
            format!("{}{suffix}", cut(&base, MAX - suffix.len()))
        })
        .find(|c| !taken(c))
        .expect("some suffix is free")
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    // Not all is never "100%", nor some "0%": those read as every record, and no record.
    if part != whole && p >= 99.95 {
        "99.9+%".into()
    } else if part != whole && p >= 99.5 {
        format!("{p:.1}%")
    } else if part > 0 && p < 0.05 {
        "<0.1%".into()
    } else if p == 100.0 || p == 0.0 || p >= 10.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

pub fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Profiled keys (bare of the prefix) and what their values were like, in first-seen order.
type Columns = Vec<(String, ColumnProfile)>;

/// The most columns `infer` proposes for one table unless told otherwise: a table an
/// analyst can still read, far below PostgreSQL's 1,600.
pub const DEFAULT_MAX_COLUMNS: usize = 200;

/// How many levels of arrays `infer` proposes as child tables unless told otherwise: a
/// record's arrays, and the arrays in their elements.
pub const DEFAULT_MAX_DEPTH: usize = 2;

/// The share of records a timestamp must be in to be suggested as `day`: a column most
/// rows lack would put them on no day.
const DAY_COVERAGE: f64 = 0.9;

/// The contract text for a profile: every column with its evidence as comments; at most
/// `max_columns` columns where objects can fold (see `objects_folded`).
pub fn contract(profile: &Profile, name: &str, file: &str, max_columns: usize) -> String {
    let prefix = key_prefix(profile);
    let mut out = header(profile, name, file, &prefix);
    // Records that parsed: a truncated line says nothing about which keys are optional.
    let parsed = profile.records - profile.malformed;
    let arrays = Arrays { profiles: &profile.arrays, prefix: &prefix, level: 0 };
    let written = columns_text(bare_columns(profile, &prefix), max_columns, parsed, &[], arrays);
    out.push_str(&written.over_budget);
    out.push_str(&written.day);
    out.push_str(&written.blocks);
    out.push_str(&written.checks);
    out
}

/// A contract's first lines: where it comes from, its name, its input, the key prefix.
fn header(profile: &Profile, name: &str, file: &str, prefix: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Inferred by tier {} from {} records ({} not JSON objects).",
        env!("CARGO_PKG_VERSION"),
        profile.records,
        profile.malformed
    );
    let _ = writeln!(out, "# Review it: rename columns, add rules (min / max, allowed, pattern, max_length), set `unique`.");
    let _ = writeln!(out, "name = {}", toml_string(name));
    let _ = writeln!(out, "file = {}", toml_string(file));
    if !prefix.is_empty() {
        let _ = writeln!(out, "key_prefix = {}", toml_string(prefix));
    }
    out
}

/// The `[[column]]` blocks of a table, the `day` suggestion among them, and a note when
/// the columns are over budget.
struct ColumnsText {
    blocks: String,
    day: String,
    over_budget: String,
    /// The columns' names, in order.
    names: Vec<String>,
    /// Checks worth declaring, as comments.
    checks: String,
}

/// Where a table's arrays are, for child tables: the profiles of their elements (keys as
/// the profile spells them, `prefix` on top-level keys), and how deep the table is (0: a
/// dataset's, 1: a child's).
#[derive(Clone, Copy)]
struct Arrays<'a> {
    profiles: &'a [(String, Profile)],
    prefix: &'a str,
    level: usize,
}

impl Arrays<'_> {
    const NONE: Arrays<'static> = Arrays { profiles: &[], prefix: "", level: 0 };
}

/// `columns` as `[[column]]` blocks, folded to at most `max_columns` where objects can fold,
/// named apart from `taken` (a split log's envelope); `parsed` records had them. An array of
/// objects, or of scalars, that survives the folding is a child table instead (`arrays`).
fn columns_text(columns: Columns, max_columns: usize, parsed: u64, taken: &[String], arrays: Arrays) -> ColumnsText {
    let (columns, folded) = objects_folded(columns, max_columns);
    let children: Vec<(String, &Profile, u64)> = arrays
        .profiles
        .iter()
        .filter_map(|(key, elements)| {
            let key = bare_key(key, arrays.prefix);
            // An array of arrays stays json: its elements have no key to name a table by.
            if key == "." {
                return None;
            }
            let (_, col) = columns.iter().find(|(k, _)| *k == key)?;
            let scalars = elements.columns.iter().filter(|(k, _)| k == ".").count();
            let fits = col.arrays > 0 && col.arrays == col.present && col.objects == 0 && elements.records > elements.malformed;
            (fits && (scalars == 0 || elements.columns.len() == 1)).then_some((key, elements, col.arrays))
        })
        .collect();
    let columns: Columns = columns.into_iter().filter(|(k, _)| !children.iter().any(|(c, _, _)| c == k)).collect();
    let (columns, rest) = keys_folded(columns, max_columns);
    // The columns tier sets in this table's children: no column of its own may take them.
    let mut taken = taken.to_vec();
    if !children.is_empty() && arrays.level == 0 {
        taken.push(crate::contract::RECORD_ID.to_string());
    }
    let taken = &taken;
    let header = format!("{}column", "child.".repeat(arrays.level));
    let mut names: Vec<String> = Vec::new();
    let mut blocks = String::new();
    for (bare, col) in &columns {
        // An array of scalars' one column, the element itself.
        let base = if bare == "." { "value".to_string() } else { column_name(bare) };
        let column = distinct_name(&base, |c| names.iter().chain(taken).any(|n| n == c));
        names.push(column.clone());
        column_block(&mut blocks, &header, bare, &column, col, parsed);
        if let Some((_, fields)) = folded.iter().find(|(k, _)| k == bare) {
            let _ = writeln!(
                blocks,
                "# one json column, not {fields} columns: an object in {} of records, folded to stay within {max_columns} columns (--max-columns)",
                percent(col.objects, parsed)
            );
        }
    }
    if !rest.is_empty() {
        let column = distinct_name("other_keys", |c| names.iter().chain(taken).any(|n| n == c));
        let _ = writeln!(blocks, "\n[[{header}]]\nname = {}\nkey = \"*\"\ntype = \"json\"", toml_string(&column));
        let most = rest.iter().map(|(_, present)| *present).max().unwrap_or(0);
        let shown: Vec<String> = rest.iter().take(5).map(|(k, _)| toml_string(k)).collect();
        let more = if rest.len() > 5 { format!(" and {} more", rest.len() - 5) } else { String::new() };
        let _ = writeln!(
            blocks,
            "# every key no other column reads, as one json object: the {} keys in fewest records ({} at most), {}{more}, \
             folded to stay within {max_columns} columns (--max-columns)",
            rest.len(),
            percent(most, parsed),
            shown.join(", ")
        );
        names.push(column);
    }
    let over_budget = match names.len() > max_columns {
        true => format!(
            "# {} columns, over the {max_columns} asked for: only nested objects and top-level keys fold, and these are neither\n",
            names.len()
        ),
        false => String::new(),
    };
    let day = day_line(&columns, &names, parsed);
    let checks = checks_text(&columns, &names, parsed);
    let mut child_names: Vec<String> = Vec::new();
    for (key, elements, in_records) in children {
        let name = distinct_name(&column_name(&key), |c| child_names.iter().any(|n| n == c));
        child_names.push(name.clone());
        let _ = writeln!(
            blocks,
            "\n# {key}: an array in {} of {}, {} elements in all: a child table, a row per element",
            percent(in_records, parsed),
            if arrays.level == 0 { "records" } else { "rows" },
            elements.records
        );
        child_block(&mut blocks, &key, &name, elements, max_columns, arrays.level, taken);
    }
    ColumnsText { blocks, day, over_budget, names, checks }
}

/// While there are more than `max_columns` columns, the top-level keys in fewest records
/// (then by name) leave them, to be kept in one json column of every other key (`key = "*"`);
/// returned beside the columns with the records each was in, fewest first.
fn keys_folded(columns: Columns, max_columns: usize) -> (Columns, Vec<(String, u64)>) {
    if columns.len() <= max_columns {
        return (columns, Vec::new());
    }
    let mut plain: Vec<(&String, u64)> =
        columns.iter().filter(|(k, _)| !k.starts_with('/') && k != ".").map(|(k, c)| (k, c.present + c.nulls + c.objects)).collect();
    plain.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
    // Room for the column of the rest, too.
    let fold = (columns.len() + 1 - max_columns).min(plain.len());
    let folded: Vec<(String, u64)> = plain.into_iter().take(fold).map(|(k, n)| (k.clone(), n)).collect();
    let kept = columns.into_iter().filter(|(k, _)| !folded.iter().any(|(f, _)| f == k)).collect();
    (kept, folded)
}

/// One `[[child]]`: an array's elements as a table of their own, with its columns (the
/// element's keys, or `.` for scalars) and its own arrays, one level down.
fn child_block(blocks: &mut String, key: &str, name: &str, elements: &Profile, max_columns: usize, level: usize, taken: &[String]) {
    let header = format!("{}child", "child.".repeat(level));
    let _ = writeln!(blocks, "[[{header}]]");
    let _ = writeln!(blocks, "name = {}", toml_string(name));
    let _ = writeln!(blocks, "key = {}", toml_string(key));
    // The columns tier sets here: the parent's key, the positions.
    let mut inherited: Vec<String> = taken.to_vec();
    inherited.push(crate::contract::POSITION.to_string());
    if level > 0 {
        inherited.push(format!("{name}_{}", crate::contract::POSITION));
    }
    let own = bare_columns(elements, "");
    let below = Arrays { profiles: &elements.arrays, prefix: "", level: level + 1 };
    let text = columns_text(own, max_columns, elements.records - elements.malformed, &inherited, below);
    blocks.push_str(&text.over_budget);
    blocks.push_str(&text.blocks);
}

/// Checks worth declaring, as comments to uncomment: the rows per day (when a day is
/// suggested; against this sample's daily average, and its own past), and the share missing
/// of the (up to three) columns nearly every record has but some lack.
fn checks_text(columns: &[(String, ColumnProfile)], names: &[String], parsed: u64) -> String {
    let mut out = String::new();
    let times = columns.iter().zip(names).filter(|((_, col), _)| matches!(col.kind(), Kind::Timestamp | Kind::Date));
    let day =
        times.rev().max_by_key(|((_, col), _)| col.present).filter(|((_, col), _)| col.present as f64 >= DAY_COVERAGE * parsed as f64);
    if let Some(((_, col), _)) = day {
        let days = match (col.min_time, col.max_time) {
            (Some(lo), Some(hi)) if hi >= lo => (hi - lo) / 86_400_000_000 + 1,
            _ => 1,
        };
        let per_day = parsed / days.max(1) as u64;
        let _ = write!(
            out,
            "\n# Checks worth declaring (uncomment them; the thresholds come from this sample: set what is normal):\n\
             # [[check]]\n# name = \"rows per day\"\n# metric = \"row_count\"\n# per = \"day\"\n\
             # warn = \"< {}\"   # {per_day} a day here, over {days} day{}\n# anomaly = {{ window = 28, sensitivity = 3 }}\n",
            (per_day / 2).max(1),
            if days == 1 { "" } else { "s" }
        );
    }
    let mut missing: Vec<(f64, &String)> = columns
        .iter()
        .zip(names)
        .filter(|((_, col), _)| col.objects == 0 && parsed > 0)
        .map(|((_, col), name)| (1.0 - col.present as f64 / parsed as f64, name))
        .filter(|(share, _)| *share > 0.0 && *share < 0.5)
        .collect();
    missing.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (share, name) in missing.into_iter().take(3) {
        if out.is_empty() {
            out.push_str("\n# Checks worth declaring (uncomment them; the thresholds come from this sample: set what is normal):\n");
        }
        let bound = ((share * 2.0 * 1000.0).ceil() / 1000.0).min(1.0);
        let _ = write!(
            out,
            "# [[check]]\n# name = {}\n# metric = \"missing_share({name})\"\n# warn = \"> {bound}\"   # missing in {} of records here\n",
            toml_string(&format!("{name} missing")),
            percent((share * parsed as f64).round() as u64, parsed)
        );
    }
    out
}

/// The `day` suggestion: the timestamp or date column with a value in the most records, if
/// that is nearly every record; else a comment saying why there is none.
fn day_line(columns: &[(String, ColumnProfile)], names: &[String], parsed: u64) -> String {
    let times = columns.iter().zip(names).filter(|((_, col), _)| matches!(col.kind(), Kind::Timestamp | Kind::Date));
    // The first of the most common (max_by_key keeps the last of equals).
    let best = times.rev().max_by_key(|((_, col), _)| col.present);
    match best {
        Some(((_, col), name)) if col.present as f64 >= DAY_COVERAGE * parsed as f64 => {
            format!("day = {}   # suggested: a timestamp in {} of records\n", toml_string(name), percent(col.present, parsed))
        }
        Some(((_, col), name)) => format!(
            "# no day suggested: the most common timestamp, {name}, is in {} of records; rows without one would be on no day\n",
            percent(col.present, parsed)
        ),
        None => String::new(),
    }
}

/// The prefix most top-level keys carry (see `dominant_prefix`), over the keys records have
/// at the top: top-level keys and the first step of each pointer.
fn key_prefix(profile: &Profile) -> String {
    let mut top_level: Vec<String> = Vec::new();
    for (k, _) in &profile.columns {
        let head = match k.strip_prefix('/') {
            Some(rest) => rest.split('/').next().unwrap_or_default().replace("~1", "/").replace("~0", "~"),
            None => k.to_string(),
        };
        if !top_level.contains(&head) {
            top_level.push(head);
        }
    }
    let top_refs: Vec<&str> = top_level.iter().map(String::as_str).collect();
    dominant_prefix(&top_refs)
}

/// The profiled keys without the prefix (the contract's `key_prefix` reads keys with or
/// without it), so a key's two spellings are one column.
fn bare_columns(profile: &Profile, prefix: &str) -> Columns {
    let mut columns: Vec<(String, ColumnProfile)> = Vec::new();
    for (key, col) in &profile.columns {
        let bare = bare_key(key, prefix);
        match columns.iter_mut().find(|(k, _)| *k == bare) {
            Some((_, merged)) => merged.merge(col.clone()),
            None => columns.push((bare, col.clone())),
        }
    }
    columns
}

/// A profiled key without the prefix: a top-level key's own, a pointer's first step's.
fn bare_key(key: &str, prefix: &str) -> String {
    let escaped_prefix = format!("/{}", prefix.replace('~', "~0").replace('/', "~1"));
    match key.strip_prefix(escaped_prefix.as_str()) {
        Some(rest) if !prefix.is_empty() && key.starts_with('/') => format!("/{rest}"),
        _ if key.starts_with('/') => key.to_string(),
        _ => key.strip_prefix(prefix).unwrap_or(key).to_string(),
    }
}

/// A key that was an object somewhere: with values of other kinds too (a string, a number,
/// an array) it is one json column and its fields are not columns; an object or null, only
/// its fields are columns (an object that never had a field stays json). While that leaves
/// more than `max_columns` columns, the object in the fewest records (then the one with the
/// most fields) is one json column instead: returned beside the columns with its field count.
fn objects_folded(columns: Columns, max_columns: usize) -> (Columns, Vec<(String, usize)>) {
    let mut whole: Vec<String> = Vec::new();
    let mut split: HashSet<String> = HashSet::new();
    for (bare, col) in &columns {
        if col.objects == 0 || whole.iter().any(|w| is_below(bare, w)) {
            continue;
        }
        let has_fields = columns.iter().any(|(k, _)| is_below(k, bare));
        if col.present > 0 || !has_fields {
            whole.push(bare.clone());
        } else {
            split.insert(bare.clone());
        }
    }
    let fields_of = |key: &str, split: &HashSet<String>| columns.iter().filter(|(k, _)| is_below(k, key) && !split.contains(k)).count();
    let kept = |whole: &[String], split: &HashSet<String>| {
        columns.iter().filter(|(k, _)| !split.contains(k) && !whole.iter().any(|w| is_below(k, w))).count()
    };
    let mut folded: Vec<(String, usize)> = Vec::new();
    while kept(&whole, &split) > max_columns {
        let candidate = columns
            .iter()
            .filter(|(k, _)| split.contains(k) && !whole.iter().any(|w| is_below(k, w)))
            .min_by_key(|(k, col)| (col.objects, std::cmp::Reverse(fields_of(k, &split))));
        let Some((key, _)) = candidate else { break };
        folded.push((key.clone(), fields_of(key, &split)));
        whole.push(key.clone());
        split.remove(key);
    }
    let columns = columns
        .into_iter()
        .filter(|(k, _)| !split.contains(k) && !whole.iter().any(|w| is_below(k, w)))
        .map(|(k, mut col)| {
            if whole.contains(&k) {
                col.fits.json = true;
            }
            (k, col)
        })
        .collect();
    (columns, folded)
}

/// One `[[column]]` of the contract: its declaration, then the evidence as comments.
fn column_block(blocks: &mut String, header: &str, bare: &str, column: &str, col: &ColumnProfile, parsed: u64) {
    let kind = col.kind();
    let _ = writeln!(blocks, "\n[[{header}]]");
    let _ = writeln!(blocks, "name = {}", toml_string(column));
    if bare != column {
        let _ = writeln!(blocks, "key = {}", toml_string(bare));
    }
    let _ = writeln!(blocks, "type = {}", toml_string(kind.name()));
    if let Some((format, others)) = col.format() {
        let _ = writeln!(blocks, "format = {}", toml_string(format));
        if !others.is_empty() {
            let others: Vec<String> = others.iter().map(|o| toml_string(o)).collect();
            let _ = writeln!(blocks, "# every value also reads as format {}: check which one the export means", others.join(" or "));
        }
    }
    // Present with a value in every record; a blank text, or a NaN number (NULL), would be
    // missing to the load.
    let with_value = col.present + col.objects;
    let null_to_load = match kind {
        Kind::Text => col.blanks,
        Kind::Integer | Kind::Bigint | Kind::Double | Kind::Numeric => col.nans,
        _ => 0,
    };
    if with_value == parsed && with_value > 0 && null_to_load == 0 {
        let _ = writeln!(blocks, "required = true");
    }
    evidence(blocks, kind, col, parsed);
}

/// The evidence of a column, as comments: how often it is there, its range, its few values,
/// and what a person should decide.
fn evidence(blocks: &mut String, kind: Kind, col: &ColumnProfile, parsed: u64) {
    let with_value = col.present + col.objects;
    let absent = parsed.saturating_sub(with_value + col.nulls);
    let mut evidence =
        format!("# present {}, null {}, absent {}", percent(with_value, parsed), percent(col.nulls, parsed), percent(absent, parsed));
    // Distinct values are counted for scalars only.
    if kind != Kind::Json {
        let distinct = if col.distinct_overflow { format!("more than {DISTINCT_CAP}") } else { col.distinct.len().to_string() };
        let _ = write!(evidence, ", distinct {distinct}");
    }
    match kind {
        Kind::Integer | Kind::Bigint | Kind::Double => {
            if let (Some((_, lo)), Some((_, hi))) = (&col.min_number, &col.max_number) {
                let _ = write!(evidence, ", min {lo}, max {hi}");
            }
        }
        Kind::Timestamp | Kind::Date => {
            if let (Some(lo), Some(hi)) = (col.min_time, col.max_time) {
                let _ = write!(evidence, ", from {} to {}", timestamp::day_of_micros(lo), timestamp::day_of_micros(hi));
            }
        }
        Kind::Text => {
            if let (Some(lo), Some(hi)) = (col.min_len, col.max_len) {
                let _ = write!(evidence, ", length {lo} to {hi}");
            }
        }
        _ => {}
    }
    let _ = writeln!(blocks, "{evidence}");
    if let Some((unit, format, lo, hi)) = epoch_reading(kind, col) {
        let _ = writeln!(
            blocks,
            "# as epoch {unit} these are {} to {}: to load them as instants, type = \"timestamp\" and format = \"{format}\"",
            timestamp::instant_text(lo),
            timestamp::instant_text(hi),
        );
    }
    if matches!(kind, Kind::Text | Kind::Integer | Kind::Bigint)
        && !col.distinct_overflow
        && !col.distinct.is_empty()
        && col.distinct.len() <= FEW_VALUES
        && col.present >= 20
    {
        let mut values: Vec<&String> = col.distinct.iter().collect();
        values.sort();
        let list: Vec<String> = values.iter().map(|v| if kind == Kind::Text { toml_string(v) } else { v.to_string() }).collect();
        let _ = writeln!(blocks, "# few values: allowed = [{}]", list.join(", "));
    }
    narrower_note(blocks, kind, col);
    // (An object in every record that has the key, folded under the column budget, says
    // so beside its block.)
    if col.objects > 0 && col.present > 0 {
        let _ = writeln!(
            blocks,
            "# an object in {} of records, another kind of value in {}: each value is kept whole as json",
            percent(col.objects, parsed),
            percent(col.present, parsed)
        );
    } else if col.present == 0 && col.objects == 0 {
        let _ = writeln!(blocks, "# never present with a value: the type is a guess");
    }
    if kind == Kind::Text && col.blanks > 0 {
        let _ =
            writeln!(blocks, "# {} of values are blank: not required (a blank required text is missing)", percent(col.blanks, col.present));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile_of(lines: &[&str]) -> Profile {
        let mut p = Profile::with_depth(DEFAULT_MAX_DEPTH);
        for l in lines {
            let mut part = Profile::with_depth(DEFAULT_MAX_DEPTH);
            part.add_record(l.as_bytes());
            p.merge(part);
        }
        p
    }

    fn kinds(p: &Profile) -> BTreeMap<String, Kind> {
        p.columns.iter().map(|(k, c)| (k.clone(), c.kind())).collect()
    }

    #[test]
    fn narrowest_type_every_value_fits() {
        let p = profile_of(&[
            r#"{"i": 1, "mixed": 1, "big": 3000000000, "s": "12", "b": true, "bs": "false", "t": "2019-05-13 14:23:41", "z": "2019-05-13T14:23:41Z", "d": "2019-05-13", "n": null, "arr": [1], "o": {"a": {"b": {"c": 1}}}}"#,
            r#"{"i": 2, "mixed": 1.5, "big": 1, "s": "-7", "b": false, "bs": "true", "t": "2019-05-14 00:00:00", "z": "2019-05-13T14:23:41.5+02:00", "d": "2019-05-14", "n": null, "arr": [], "o": {"a": {"x": "y"}}}"#,
            r#"{"i": 3, "mixed": 2, "s": "x", "t": "2019-05-14T01:00:00", "n": null}"#,
        ]);
        let k = kinds(&p);
        assert_eq!(k["i"], Kind::Integer);
        assert_eq!(k["mixed"], Kind::Double);
        assert_eq!(k["big"], Kind::Bigint);
        assert_eq!(k["s"], Kind::Text);
        assert_eq!(k["b"], Kind::Boolean);
        assert_eq!(k["bs"], Kind::Boolean);
        assert_eq!(k["t"], Kind::Timestamp);
        assert_eq!(k["z"], Kind::Timestamp);
        assert_eq!(k["d"], Kind::Date);
        assert_eq!(k["n"], Kind::Text, "all null: a guess");
        assert_eq!(k["arr"], Kind::Json);
        // Nested objects become pointers, deeper than three levels json.
        assert_eq!(k["/o/a/b"], Kind::Json);
        assert_eq!(k["/o/a/x"], Kind::Text);
        let i = p.get("i").unwrap();
        assert_eq!(
            (i.present, i.min_number.as_ref().map(|m| m.1.as_str()), i.max_number.as_ref().map(|m| m.1.as_str())),
            (3, Some("1"), Some("3"))
        );
        assert_eq!(p.get("big").unwrap().present, 2);
    }

    #[test]
    fn integers_as_strings_and_nan_numbers() {
        let p = profile_of(&[r#"{"a": "5", "b": "NaN", "c": 1}"#, r#"{"a": "6", "b": "1.5", "c": "NaN"}"#]);
        let k = kinds(&p);
        assert_eq!(k["a"], Kind::Integer);
        assert_eq!(k["b"], Kind::Double);
        assert_eq!(k["c"], Kind::Double);
    }

    #[test]
    fn a_prefix_most_keys_carry_and_both_spellings_as_one_column() {
        let mut lines: Vec<String> = (0..20).map(|i| format!(r#"{{"w.city": "Oslo", "w.t": {i}, "w.n": 1}}"#)).collect();
        lines.push(r#"{"city": "Rome", "w.t": 21, "w.n": 2}"#.to_string());
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let text = contract(&profile_of(&refs), "w", "w.json", DEFAULT_MAX_COLUMNS);
        let ds = crate::contract::parse(&text, "inferred.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(ds.prefix, "w.");
        assert_eq!(ds.column_names().collect::<Vec<_>>(), ["city", "t", "n"]);
        assert!(ds.fields[0].required, "present in every record, under one spelling or the other:\n{text}");
    }

    /// Heterogeneous records for the property below: keys that switch between objects,
    /// arrays, strings (empty and blank ones too), numbers, booleans, null and absent.
    pub(crate) mod records {
        use rand::{Rng, SeedableRng};
        use rand_chacha::ChaCha8Rng;

        const STRINGS: [&str; 16] = [
            "",
            " ",
            "\\t",
            "abc",
            "Z\\u00fcrich",
            "say \\\"hi\\\"",
            "12",
            "-7",
            "1.50",
            "true",
            "yes",
            "2019-05-13 14:23:41",
            "2019-05-13T14:23:41.5+02:00",
            "2019-05-13",
            "NaN",
            "null",
        ];
        const NUMBERS: [&str; 10] = ["0", "-0", "7", "-12", "3000000000", "1.5", "-0.0", "1e3", "2.50", "123456789012345678901234567890"];
        const KINDS: usize = 9;

        /// A value of `kind`: 0 string, 1 number, 2 boolean, 3 null, 4 array, 5 object,
        /// 6 empty object, 7 timestamp text, 8 integer.
        fn value(rng: &mut ChaCha8Rng, kind: usize, depth: usize, shapes: &[Vec<usize>]) -> String {
            match kind {
                0 => format!("\"{}\"", STRINGS[rng.gen_range(0..STRINGS.len())]),
                1 => NUMBERS[rng.gen_range(0..NUMBERS.len())].to_string(),
                2 => ["true", "false"][rng.gen_range(0..2)].to_string(),
                3 => "null".to_string(),
                4 => [
                    "[]",
                    "[1, \"a\"]",
                    "[{\"x\": 1}, null]",
                    "[[1], [2, 3]]",
                    "[{\"sha\": \"a\", \"n\": 1, \"files\": [\"x\", \"y\"]}, {\"sha\": \"b\", \"n\": NaN, \"files\": []}]",
                    "[{\"sha\": \"c\", \"n\": \"2\", \"files\": [{\"p\": 1}]}]",
                ][rng.gen_range(0..6)]
                .to_string(),
                5 if depth < 5 => object(rng, depth + 1, shapes),
                5 | 6 => "{}".to_string(),
                7 => format!("\"2019-05-{:02} {:02}:{:02}:00\"", rng.gen_range(1..29), rng.gen_range(0..24), rng.gen_range(0..60)),
                _ => rng.gen_range(-1000..1000i64).to_string(),
            }
        }

        /// An object whose keys each draw their kind from the kinds `shapes` allows at this
        /// depth; a key is absent now and then.
        fn object(rng: &mut ChaCha8Rng, depth: usize, shapes: &[Vec<usize>]) -> String {
            let names = ["id", "type", "body", "head_commit", "meta.x", "gravatar_id", "created_at", "Count", "a b", "payload"];
            let mut fields = Vec::new();
            for (i, name) in names.iter().enumerate().take(if depth == 1 { names.len() } else { 4 }) {
                let allowed = &shapes[(i + depth * 7) % shapes.len()];
                // Some keys are in every record (so `required` is decided), the rest now and then.
                if !(i + depth).is_multiple_of(3) && rng.gen_bool(0.15) {
                    continue;
                }
                let kind = allowed[rng.gen_range(0..allowed.len())];
                fields.push(format!("\"{name}\": {}", value(rng, kind, depth, shapes)));
            }
            // Arrays that are always arrays: of objects (with an array in each), of scalars.
            if depth == 1 && rng.gen_bool(0.7) {
                let commits: Vec<String> = (0..rng.gen_range(0..4))
                    .map(|j| {
                        let n = ["1", "NaN", "\"2\"", "-3.5"][rng.gen_range(0..4)];
                        let files: Vec<String> = (0..rng.gen_range(0..3)).map(|k| format!("\"f{k}\"")).collect();
                        format!("{{\"sha\": \"s{j}\", \"n\": {n}, \"files\": [{}]}}", files.join(", "))
                    })
                    .collect();
                fields.push(format!("\"commits\": [{}]", commits.join(", ")));
            }
            if depth == 1 && rng.gen_bool(0.5) {
                let labels: Vec<String> = (0..rng.gen_range(0..3))
                    .map(|_| {
                        let kind = [0, 1, 7, 8][rng.gen_range(0..4)];
                        value(rng, kind, depth, shapes)
                    })
                    .collect();
                fields.push(format!("\"labels\": [{}]", labels.join(", ")));
            }
            format!("{{{}}}", fields.join(", "))
        }

        /// `n` records from `seed`: each key position allows one to four kinds.
        pub fn generate(seed: u64, n: usize) -> Vec<String> {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let shapes: Vec<Vec<usize>> = (0..13).map(|_| (0..rng.gen_range(1..=4)).map(|_| rng.gen_range(0..KINDS)).collect()).collect();
            (0..n).map(|_| object(&mut rng, 1, &shapes)).collect()
        }
    }

    /// Every record parses and is checked as the load checks it; the reasons of those rejected.
    fn rejects_under(ds: &'static crate::dataset::Dataset, lines: &[String]) -> Vec<String> {
        let text = lines.join("\n");
        let scan = crate::source::framing::scan(text.as_bytes(), 1, true);
        assert_eq!(scan.spans.len(), lines.len());
        let chunk =
            crate::source::Chunk { buf: text.as_bytes().to_vec(), spans: scan.spans, offset_end: text.len() as u64, messages: None };
        let parsed = crate::transform::parse::parse_chunk(ds, &chunk).unwrap();
        let (_, failures) = crate::children::child_rows(ds, &chunk.buf, &chunk.spans, chunk.offset_end, &parsed).unwrap();
        let checked = crate::quality::check(ds, parsed).unwrap();
        let checked = crate::children::fail_rows(checked, &failures).unwrap();
        let reasons = checked.column(crate::quality::COL_REASON).unwrap().str().unwrap().clone();
        let details = checked.column(crate::transform::parse::COL_DETAIL).unwrap().str().unwrap().clone();
        (0..checked.height())
            .filter_map(|i| reasons.get(i).map(|r| format!("{r}: {} in {}", details.get(i).unwrap_or_default(), lines[i])))
            .collect()
    }

    #[test]
    fn a_contract_infer_writes_loads_every_record_it_read() {
        // Under the default budget, and under one small enough to fold most objects; arrays
        // of objects and of scalars become child tables, two levels down.
        let mut with_children = 0;
        for (seed, max_columns) in (0..300).flat_map(|seed| [(seed, DEFAULT_MAX_COLUMNS), (seed, 4)]) {
            let lines = records::generate(seed, 40);
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let text = contract(&profile_of(&refs), "mixed", "mixed.json", max_columns);
            with_children += text.contains("[[child.child]]") as usize;
            let ds = crate::contract::parse(&text, "inferred.toml").unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
            let ds: &'static crate::dataset::Dataset = Box::leak(Box::new(ds));
            let rejects = rejects_under(ds, &lines);
            assert!(rejects.is_empty(), "seed {seed}, {max_columns} columns: {rejects:#?}\n{text}");
        }
        assert!(with_children > 50, "{with_children} contracts with grandchild tables");
    }

    #[test]
    fn a_column_budget_folds_the_objects_in_fewest_records() {
        let fields = |prefix: &str, n: usize| (0..n).map(|j| format!(r#""{prefix}{j}":{j}"#)).collect::<Vec<_>>().join(",");
        let lines: Vec<String> = (0..100)
            .map(|i| {
                let extra = match i {
                    0..5 => format!(r#","rare":{{{}}}"#, fields("f", 30)),
                    50..60 => format!(r#","mid":{{{}}}"#, fields("g", 10)),
                    _ => String::new(),
                };
                format!(r#"{{"id":{i},"common":{{"a":1,"b":2}}{extra}}}"#)
            })
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let profile = profile_of(&refs);
        let columns_of = |text: &str| crate::contract::parse(text, "t.toml").unwrap().column_names().map(String::from).collect::<Vec<_>>();

        // 43 columns unfolded; within 20 only the object in 5% of records folds.
        assert_eq!(columns_of(&contract(&profile, "t", "t.json", 200)).len(), 43);
        let text = contract(&profile, "t", "t.json", 20);
        let columns = columns_of(&text);
        assert_eq!(columns.len(), 14, "{text}");
        assert!(text.contains("name = \"rare\"\ntype = \"json\""), "{text}");
        assert!(text.contains("name = \"rare\"\ntype = \"json\"\n# present 5.0%, null 0%, absent 95%\n# one json column, not 30 columns: an object in 5.0% of records"), "{text}");
        assert!(columns.contains(&"mid_g9".to_string()) && columns.contains(&"common_a".to_string()), "{columns:?}");
        let ds: &'static crate::dataset::Dataset = Box::leak(Box::new(crate::contract::parse(&text, "t.toml").unwrap()));
        assert!(rejects_under(ds, &lines).is_empty());

        // Within 3: every object folds, rarest first; then the top-level keys in fewest
        // records go into one column of every other key.
        let text = contract(&profile, "t", "t.json", 3);
        assert_eq!(columns_of(&text), ["id", "common", "other_keys"]);
        assert!(
            text.contains("key = \"*\"\ntype = \"json\"\n# every key no other column reads, as one json object: the 2 keys in fewest records (10% at most), \"rare\", \"mid\""),
            "{text}"
        );
        let ds: &'static crate::dataset::Dataset = Box::leak(Box::new(crate::contract::parse(&text, "t.toml").unwrap()));
        assert!(rejects_under(ds, &lines).is_empty());
        // Within 1: every key is one of the others.
        let text = contract(&profile, "t", "t.json", 1);
        assert_eq!(columns_of(&text), ["other_keys"]);
        let ds: &'static crate::dataset::Dataset = Box::leak(Box::new(crate::contract::parse(&text, "t.toml").unwrap()));
        assert!(rejects_under(ds, &lines).is_empty());
    }

    #[test]
    fn day_is_a_timestamp_in_nearly_every_record() {
        let lines: Vec<String> = (0..100)
            .map(|i| match i {
                0..5 => format!(r#"{{"seen":"2024-01-0{}T00:00:00Z","at":"2024-02-01T10:00:00Z"}}"#, i + 1),
                5..95 => r#"{"at":"2024-02-01T10:00:00Z"}"#.to_string(),
                _ => r#"{"other":1}"#.to_string(),
            })
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let text = contract(&profile_of(&refs), "t", "t.json", 200);
        assert!(text.contains("day = \"at\"   # suggested: a timestamp in 95% of records"), "{text}");
        let text = contract(&profile_of(&refs[..5]), "t", "t.json", 200);
        assert!(text.contains("day = \"seen\""), "{text}");
        let sparse = [r#"{"other":1}"#, r#"{"other":1}"#, r#"{"seen":"2024-01-01T00:00:00Z"}"#].repeat(5);
        let text = contract(&profile_of(&sparse), "t", "t.json", 200);
        assert!(text.contains("# no day suggested: the most common timestamp, seen, is in 33% of records"), "{text}");
        assert!(!text.contains("\nday ="), "{text}");
    }

    #[test]
    fn keys_of_mixed_kinds_and_blank_texts() {
        let p = profile_of(&[
            r#"{"head_commit": {"id": "a1", "msg": "x"}, "body": {"k": 1}, "gravatar_id": "", "o": {}, "n": 1.5}"#,
            r#"{"head_commit": null, "body": "plain", "gravatar_id": "", "o": null, "n": "NaN"}"#,
            r#"{"head_commit": {"id": "b2"}, "body": [1], "gravatar_id": "", "n": 2}"#,
        ]);
        let text = contract(&p, "hooks", "hooks.json", DEFAULT_MAX_COLUMNS);
        let ds = crate::contract::parse(&text, "inferred.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let columns: Vec<(&str, Kind, bool)> = ds.fields.iter().map(|f| (f.name.as_str(), f.kind, f.required)).collect();
        assert_eq!(
            columns,
            [
                ("head_commit_id", Kind::Text, false),
                ("head_commit_msg", Kind::Text, false),
                ("body", Kind::Json, true),
                ("gravatar_id", Kind::Text, false),
                ("o", Kind::Json, false),
                ("n", Kind::Double, false),
            ],
            "{text}"
        );
        assert!(text.contains("each value is kept whole as json"), "{text}");
        assert!(text.contains("100% of values are blank"), "{text}");
    }

    #[test]
    fn names_stay_distinct_within_63_bytes() {
        let long = "k".repeat(70);
        let lines = [format!(r#"{{"{long}a": 1, "{long}b": 2, "{long}c": 3}}"#)];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let text = contract(&profile_of(&refs), "long", "long.json", DEFAULT_MAX_COLUMNS);
        let ds = crate::contract::parse(&text, "inferred.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let names: Vec<&str> = ds.column_names().collect();
        assert_eq!(names, [long[..63].to_string(), format!("{}_2", &long[..61]), format!("{}_3", &long[..61])]);
        assert_eq!(distinct_name("a", |_| false), "a");
        assert_eq!(distinct_name("a", |n| n == "a" || n == "a_2"), "a_3");
    }

    #[test]
    fn contract_text_reads_back() {
        let mut lines = Vec::new();
        for i in 0..30 {
            lines.push(format!(
                r#"{{"segment_tracks.messageId": "m{i}", "segment_tracks.event_name": "{}", "segment_tracks.sent_at": "2019-05-13 14:23:{:02}", "segment_tracks.context": {{"app": {{"version": "1.{}"}}}}}}"#,
                if i % 2 == 0 { "open" } else { "close" },
                i,
                i % 3
            ));
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let p = profile_of(&refs);
        let text = contract(&p, "events", "events.json", DEFAULT_MAX_COLUMNS);
        let ds = crate::contract::parse(&text, "inferred.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(ds.prefix, "segment_tracks.");
        assert_eq!(ds.day_field.as_deref(), Some("sent_at"));
        let names: Vec<&str> = ds.column_names().collect();
        assert_eq!(names, ["message_id", "event_name", "sent_at", "context_app_version"]);
        assert!(ds.fields.iter().all(|f| f.required));
        assert!(text.contains("allowed = [\"close\", \"open\"]"), "{text}");
        assert_eq!(column_name("/context/app/version"), "context_app_version");
        assert_eq!(column_name("userAgentID"), "user_agent_id");
    }
}

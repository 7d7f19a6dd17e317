//! A dataset as its contract declares it (`datasets/<name>.toml`, read by `contract`):
//! the table, where each column's value sits in a record, its type and its rules. This
//! declaration drives the JSON parser (which keys to pick), the casts, the quality rules,
//! the Postgres DDL, the COPY encoder, validation and the lake: no module names a column.
//! No Polars here: the fuzz target (fuzz/) builds this module on its own.

use std::collections::HashMap;

/// The type a column is cast to, and stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// `integer` (32 bits).
    Integer,
    /// `bigint` (64 bits).
    Bigint,
    /// `double precision`: never rounded, unlike the original's DECIMAL(6,2).
    Double,
    /// `numeric`: exact decimals, kept as written.
    Numeric,
    Boolean,
    /// `timestamptz`; naive input read as UTC, or in the column's declared time zone.
    Timestamp,
    Date,
    /// `jsonb`: any JSON value, objects and arrays included.
    Json,
}

impl Kind {
    pub const ALL: [Kind; 9] =
        [Kind::Text, Kind::Integer, Kind::Bigint, Kind::Double, Kind::Numeric, Kind::Boolean, Kind::Timestamp, Kind::Date, Kind::Json];

    /// The name contracts use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Integer => "integer",
            Kind::Bigint => "bigint",
            Kind::Double => "double",
            Kind::Numeric => "numeric",
            Kind::Boolean => "boolean",
            Kind::Timestamp => "timestamp",
            Kind::Date => "date",
            Kind::Json => "json",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn sql_type(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Integer => "integer",
            Kind::Bigint => "bigint",
            Kind::Double => "double precision",
            Kind::Numeric => "numeric",
            Kind::Boolean => "boolean",
            Kind::Timestamp => "timestamptz",
            Kind::Date => "date",
            Kind::Json => "jsonb",
        }
    }

    /// The type as the server's `format_type` spells it (what a table's catalog says).
    pub fn catalog_type(self) -> &'static str {
        match self {
            Kind::Timestamp => "timestamp with time zone",
            other => other.sql_type(),
        }
    }

    /// Whether the bare `NaN` / `Infinity` tokens some exporters write (not JSON) are read
    /// for this column: only numbers can hold them.
    pub fn is_numeric(self) -> bool {
        matches!(self, Kind::Integer | Kind::Bigint | Kind::Double | Kind::Numeric)
    }
}

/// Where a column's value sits in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// A top-level key (which may contain dots, as the BI exports' keys do).
    Plain(String),
    /// A JSON Pointer into nested objects: `/context/app/version` is `["context", "app", "version"]`.
    Pointer(Vec<String>),
    /// The whole record, as JSON (a split log's catch-all table keeps what no table took),
    /// or the whole element of a child table's array (`key = "."`: an array of scalars).
    Record,
    /// Set by tier, not read from the record: in a child table, the value of its parent's
    /// column of this name (the parent's key), or the record's ordinal in its file
    /// (`COL_RECORD`, also in the parent table when it has no `unique` key).
    Parent(String),
    /// Set by tier: a child row's position in its array (0 for the first element).
    Position,
    /// Every top-level key no other column reads, as one JSON object (`key = "*"`): the rare
    /// keys of a wide log, kept without a column each.
    Rest,
    /// Set by tier from the Kafka message a record came in (`message = "offset"`); null for
    /// a record read from a file.
    Message(MessagePart),
}

/// What of a Kafka message a column can hold besides its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagePart {
    Topic,
    Partition,
    Offset,
    /// The message's key, as text (a key that is not UTF-8 as `\x` and its bytes in hex,
    /// PostgreSQL's text form of bytea).
    Key,
    /// The message's timestamp (RFC 3339, UTC, milliseconds).
    Timestamp,
}

impl MessagePart {
    pub const ALL: [MessagePart; 5] =
        [MessagePart::Topic, MessagePart::Partition, MessagePart::Offset, MessagePart::Key, MessagePart::Timestamp];

    pub fn name(self) -> &'static str {
        match self {
            MessagePart::Topic => "topic",
            MessagePart::Partition => "partition",
            MessagePart::Offset => "offset",
            MessagePart::Key => "key",
            MessagePart::Timestamp => "timestamp",
        }
    }

    pub fn from_name(name: &str) -> Option<MessagePart> {
        MessagePart::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// The spellings of a top-level key in an export that puts `prefix` before its keys or not:
/// with the prefix, and bare. A key written with the prefix (`split_by =
/// "segment_tracks.event_name"`, as the export spells it) is the same key bare too, as a
/// column's is: the records that drop the prefix are read alike.
pub fn key_spellings(prefix: &str, key: &str) -> Vec<String> {
    let bare = bare_of(prefix, key);
    let mut spellings = vec![format!("{prefix}{bare}"), bare.to_string()];
    if key != bare && !spellings.iter().any(|s| s == key) {
        spellings.push(key.to_string());
    }
    spellings.dedup();
    spellings
}

/// Whether a record's top-level `candidate` is one of `key`'s spellings (`key_spellings`,
/// without building them: read for every record).
pub fn spells(prefix: &str, key: &str, candidate: &str) -> bool {
    let bare = bare_of(prefix, key);
    candidate == key || candidate == bare || candidate.strip_prefix(prefix) == Some(bare)
}

/// A key without the prefix it was written with (the prefix alone stays a key).
fn bare_of<'a>(prefix: &str, key: &'a str) -> &'a str {
    key.strip_prefix(prefix).filter(|bare| !prefix.is_empty() && !bare.is_empty()).unwrap_or(key)
}

impl Key {
    /// `"/a/b"` is a JSON Pointer (with `~1` for `/` and `~0` for `~`); anything else a plain key.
    pub fn parse(text: &str) -> Key {
        match text.strip_prefix('/') {
            Some(rest) => Key::Pointer(rest.split('/').map(|s| s.replace("~1", "/").replace("~0", "~")).collect()),
            None => Key::Plain(text.to_string()),
        }
    }

    pub fn display(&self) -> String {
        match self {
            Key::Plain(k) => k.clone(),
            Key::Pointer(parts) => parts.iter().map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1"))).collect(),
            Key::Record => ".".to_string(),
            Key::Parent(column) if column == crate::frame::COL_RECORD => "(the record's ordinal in its file)".to_string(),
            Key::Parent(column) => format!("(the parent's {column})"),
            Key::Position => "(the position in the array)".to_string(),
            Key::Rest => "*".to_string(),
            Key::Message(part) => format!("(the message's {})", part.name()),
        }
    }
}

/// The rules a value must pass after its cast, besides `required`.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Inclusive bounds, as decimal text (compared exactly for every number type).
    pub min: Option<String>,
    pub max: Option<String>,
    /// The values allowed, as text (numbers compared as numbers).
    pub allowed: Vec<String>,
    /// A regular expression a text must match (anywhere, unless anchored).
    pub pattern: Option<String>,
    /// The most characters a text may have.
    pub max_length: Option<usize>,
}

/// The ledger: one row per load of any dataset of a schema (a name no dataset may take).
pub const LEDGER: &str = "tier_loads";

#[derive(Debug, Clone)]
pub struct Field {
    /// Column name in Postgres and in frames.
    pub name: String,
    pub key: Key,
    pub kind: Kind,
    pub required: bool,
    pub rules: Rules,
    /// For timestamps: the IANA zone naive input is read in (default UTC).
    pub timezone: Option<String>,
    /// For timestamps and dates: how values are written (default ISO 8601).
    pub format: crate::values::timestamp::Format,
    /// Not in the contract: added by a load for a new key (`on_new_key = "evolve"`).
    pub evolved: bool,
}

impl Field {
    /// Whether this column holds the record's ordinal in its file (`tier_record`): a row's
    /// identity, not its contents, so duplicates are compared without it.
    pub fn is_record_id(&self) -> bool {
        matches!(&self.key, Key::Parent(c) if c == crate::frame::COL_RECORD)
    }

    /// Whether tier sets this column rather than reading it from the record.
    pub fn is_set_by_tier(&self) -> bool {
        matches!(self.key, Key::Parent(_) | Key::Position | Key::Message(_))
    }
}

/// How a load writes its rows into the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Replace the table (and its rejects) atomically.
    Replace,
    /// Add to the table; a file already in the ledger is refused unless --force.
    Append,
    /// Upsert on the dataset's `unique` key: new keys inserted, changed rows updated.
    Merge,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Replace, Mode::Append, Mode::Merge];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Replace => "replace",
            Mode::Append => "append",
            Mode::Merge => "merge",
        }
    }

    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// Whether the load adds to the rows already there (and is recorded by file checksum).
    pub fn keeps_rows(self) -> bool {
        self != Mode::Replace
    }
}

/// What a load does with a top-level key the contract does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnNewKey {
    /// Leave it out of the table, counted as a warning.
    #[default]
    Ignore,
    /// Add a column for it (type inferred from this load's values), in the load's transaction.
    Evolve,
    /// Reject the record (`unknown_key`).
    Reject,
}

impl OnNewKey {
    pub const ALL: [OnNewKey; 3] = [OnNewKey::Ignore, OnNewKey::Evolve, OnNewKey::Reject];

    pub fn as_str(self) -> &'static str {
        match self {
            OnNewKey::Ignore => "ignore",
            OnNewKey::Evolve => "evolve",
            OnNewKey::Reject => "reject",
        }
    }

    pub fn from_name(name: &str) -> Option<OnNewKey> {
        OnNewKey::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// A log whose records go to one table per kind: the value at `by` names the kind.
#[derive(Debug, Clone)]
pub struct Split {
    pub by: Key,
    /// Reads the kind of a record: a dataset of one text column at `by`.
    pub router: &'static Dataset,
    /// A kind's value -> its table (an index into `tables`).
    pub routes: HashMap<String, usize, ahash::RandomState>,
    /// One dataset per table, in file-name order; the catch-all table last, if any.
    pub tables: Vec<&'static Dataset>,
    pub unrouted: Unrouted,
}

/// An array of a table's records (or of a child's elements) kept as a table of its own: one
/// row per element, with the parent's key and the element's position.
#[derive(Debug, Clone)]
pub struct Child {
    /// Where the array sits in the parent's record (or element).
    pub array: Key,
    /// The child table: the parent's key columns, `position`, the element's columns (keys
    /// relative to the element), and its own children.
    pub ds: &'static Dataset,
}

/// What becomes of a record whose kind has no table (or that has no kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrouted {
    /// Into the catch-all table (an index into `Split::tables`).
    Table(usize),
    /// Rejected as `unrouted`.
    Reject,
}

impl Split {
    /// The table a kind's value goes to, if any.
    pub fn route(&self, kind: Option<&str>) -> Option<usize> {
        match kind.and_then(|k| self.routes.get(k)) {
            Some(&table) => Some(table),
            None => match self.unrouted {
                Unrouted::Table(table) => Some(table),
                Unrouted::Reject => None,
            },
        }
    }
}

#[derive(Debug)]
pub struct Dataset {
    /// Table name.
    pub name: String,
    /// The default input under the data directory: a file, a directory or a glob.
    pub file: String,
    /// A prefix the export puts before every top-level key (`segment_tracks.`), stripped.
    pub prefix: String,
    pub fields: Vec<Field>,
    /// The timestamp or date column that places a row on a day (validation, lake).
    pub day_field: Option<String>,
    /// The columns that identify a row for the duplicate check; empty: the whole row.
    pub unique: Vec<String>,
    /// The contract file it was read from.
    pub source: String,
    /// The load mode when the command line names none (`mode = ...` in the contract).
    pub mode: Option<Mode>,
    pub on_new_key: OnNewKey,
    /// A log split into one table per kind of record (`split_by`); its own fields are the
    /// envelope every table shares.
    pub split: Option<Split>,
    /// For one table of a split log, or a child table: the dataset loaded's name (its
    /// rejects table and ledger entries).
    pub log: Option<String>,
    /// Arrays kept as child tables (`[[child]]`).
    pub children: Vec<Child>,
    /// Declared checks (`[[check]]`): measures of the table judged by thresholds or the past.
    pub checks: Vec<crate::checks::DeclaredCheck>,
    /// Keys read though no column reads them (see `also_known`).
    known: Vec<Key>,
    /// The fields holding the whole record, and every other key (looked up per record).
    record: Option<usize>,
    rest: Option<usize>,
    /// Every spelling of every top-level key -> field index.
    keys: HashMap<String, usize, ahash::RandomState>,
    /// Top-level keys that lead into nested objects -> the fields whose pointer starts there.
    heads: HashMap<String, Vec<usize>, ahash::RandomState>,
}

impl Dataset {
    /// Builds the key lookups. `fields` must have distinct names (the contract checks).
    pub fn new(
        name: String,
        file: String,
        prefix: String,
        fields: Vec<Field>,
        day_field: Option<String>,
        unique: Vec<String>,
        source: String,
    ) -> Dataset {
        let mut keys: HashMap<String, usize, ahash::RandomState> = HashMap::default();
        let mut heads: HashMap<String, Vec<usize>, ahash::RandomState> = HashMap::default();
        for (i, f) in fields.iter().enumerate() {
            match &f.key {
                Key::Plain(k) => {
                    for spelling in key_spellings(&prefix, k) {
                        keys.entry(spelling).or_insert(i);
                    }
                }
                Key::Record | Key::Parent(_) | Key::Position | Key::Rest | Key::Message(_) => {}
                Key::Pointer(parts) => {
                    for spelling in key_spellings(&prefix, &parts[0]) {
                        let list = heads.entry(spelling).or_default();
                        if !list.contains(&i) {
                            list.push(i);
                        }
                    }
                }
            }
        }
        // The column name as a key too, where no other field's key claims it.
        for (i, f) in fields.iter().enumerate() {
            if matches!(f.key, Key::Plain(_)) {
                for spelling in [f.name.clone(), format!("{prefix}{}", f.name)] {
                    if !heads.contains_key(&spelling) {
                        keys.entry(spelling).or_insert(i);
                    }
                }
            }
        }
        // A key column cannot be empty: a row without its key matches nothing (and a NULL
        // never conflicts in a unique index, so a merge would insert it again every time).
        let mut fields = fields;
        let record = fields.iter().position(|f| f.key == Key::Record);
        let rest = fields.iter().position(|f| f.key == Key::Rest);
        for f in fields.iter_mut().filter(|f| unique.contains(&f.name)) {
            f.required = true;
        }
        Dataset {
            name,
            file,
            prefix,
            fields,
            day_field,
            unique,
            source,
            mode: None,
            on_new_key: OnNewKey::Ignore,
            split: None,
            log: None,
            children: Vec::new(),
            checks: Vec::new(),
            known: Vec::new(),
            record,
            rest,
            keys,
            heads,
        }
    }

    /// Where rejected records go: `<name>_rejects`, one for all the tables of a split log.
    pub fn rejects_table(&self) -> String {
        format!("{}_rejects", self.log.as_deref().unwrap_or(&self.name))
    }

    /// The name the ledger records loads under: the log's, for a table of a split log.
    pub fn ledger_name(&self) -> &str {
        self.log.as_deref().unwrap_or(&self.name)
    }

    /// The tables a load of this dataset writes: itself, or each table of a split log, each
    /// followed by its child tables (depth first).
    pub fn tables(&'static self) -> Vec<&'static Dataset> {
        let mut out = Vec::new();
        match &self.split {
            Some(split) => split.tables.iter().for_each(|t| t.with_children(&mut out)),
            None => self.with_children(&mut out),
        }
        out
    }

    fn with_children(&'static self, out: &mut Vec<&'static Dataset>) {
        out.push(self);
        for c in &self.children {
            c.ds.with_children(out);
        }
    }

    /// What has checks to evaluate: a split log itself (its reject_share, over the whole
    /// log), then each of its tables (or this table and its children) that declares any.
    pub fn checked(&'static self) -> Vec<&'static Dataset> {
        let log = Some(self).filter(|d| d.split.is_some() && !d.checks.is_empty());
        log.into_iter().chain(self.tables().into_iter().filter(|t| !t.checks.is_empty())).collect()
    }

    /// `tables`, for a dataset that need not live forever.
    pub fn tables_here(&self) -> Vec<&Dataset> {
        let mut out: Vec<&Dataset> = Vec::new();
        match &self.split {
            Some(split) => split.tables.iter().for_each(|t| out.extend(t.tables())),
            None => {
                out.push(self);
                for c in &self.children {
                    out.extend(c.ds.tables());
                }
            }
        }
        out
    }

    /// Whether this is a child table (its rows are elements of its parents' arrays).
    pub fn is_child(&self) -> bool {
        self.fields.iter().any(|f| f.key == Key::Position)
    }

    /// Whether a load writes more than this one table (a split log, child tables): the
    /// ledger then lists each table with its figures.
    pub fn writes_many(&self) -> bool {
        self.split.is_some() || !self.children.is_empty()
    }

    /// Takes `key` as read though no column reads it (a split log's kind, which its tables
    /// do not store): not an unknown key.
    pub fn also_known(&mut self, key: &Key) {
        let head = match key {
            Key::Plain(k) => k.clone(),
            Key::Pointer(parts) => parts[0].clone(),
            Key::Record | Key::Parent(_) | Key::Position | Key::Rest | Key::Message(_) => return,
        };
        self.known.push(key.clone());
        if self.keys.contains_key(&head) {
            return;
        }
        for spelling in key_spellings(&self.prefix, &head) {
            self.heads.entry(spelling).or_default();
        }
    }

    /// Sets the child tables, whose arrays' keys are then no unknown keys of this one.
    pub fn set_children(&mut self, children: Vec<Child>) {
        for c in &children {
            self.also_known(&c.array);
        }
        self.children = children;
    }

    /// The one-column dataset that reads a split log's kind: the text at `by`.
    pub fn router(by: Key, prefix: &str) -> Dataset {
        let field = Field {
            name: "kind".into(),
            key: by,
            kind: Kind::Text,
            required: false,
            rules: Rules::default(),
            timezone: None,
            format: crate::values::timestamp::Format::Iso,
            evolved: false,
        };
        Dataset::new("kind".into(), String::new(), prefix.to_string(), vec![field], None, Vec::new(), String::new())
    }

    /// The field holding the whole record, if any (a catch-all table's).
    pub fn record_field(&self) -> Option<usize> {
        self.record
    }

    /// The field holding every key no other field reads, if any (`key = "*"`).
    pub fn rest_field(&self) -> Option<usize> {
        self.rest
    }

    /// Index of the field a top-level JSON key belongs to. Keys may carry the prefix or not.
    /// A hash lookup: this runs for every key of every record.
    pub fn field_index(&self, key: &str) -> Option<usize> {
        self.keys.get(key).copied()
    }

    /// The fields whose JSON Pointer starts at this top-level key, if any.
    pub fn nested_fields(&self, key: &str) -> Option<&[usize]> {
        self.heads.get(key).map(Vec::as_slice)
    }

    /// Whether any column reads a nested value.
    pub fn has_nested(&self) -> bool {
        !self.heads.is_empty()
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The same dataset with more columns (a load's new keys; see `evolve`).
    pub fn with_fields(&self, more: Vec<Field>) -> Dataset {
        let mut fields = self.fields.clone();
        fields.extend(more);
        let mut ds = Dataset::new(
            self.name.clone(),
            self.file.clone(),
            self.prefix.clone(),
            fields,
            self.day_field.clone(),
            self.unique.clone(),
            self.source.clone(),
        );
        (ds.mode, ds.on_new_key) = (self.mode, self.on_new_key);
        (ds.split, ds.log) = (self.split.clone(), self.log.clone());
        ds.set_children(self.children.clone());
        ds.checks = self.checks.clone();
        for key in &self.known {
            ds.also_known(key);
        }
        ds
    }

    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.name.as_str())
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A dataset for unit tests, from contract text (see `contract`).
    pub(crate) fn from_toml(text: &str) -> &'static Dataset {
        Box::leak(Box::new(crate::contract::parse(text, "test.toml").unwrap()))
    }

    #[test]
    fn a_key_is_spelled_with_and_without_the_prefix_however_it_is_written() {
        assert_eq!(key_spellings("e.", "type"), ["e.type", "type"]);
        assert_eq!(key_spellings("e.", "e.type"), ["e.type", "type"]);
        assert_eq!(key_spellings("", "type"), ["type"]);
        // The prefix alone is a key of its own.
        assert_eq!(key_spellings("e.", "e."), ["e.e.", "e."]);
        // The same rule read record by record.
        for (prefix, key) in [("e.", "type"), ("e.", "e.type"), ("", "type"), ("e.", "e.")] {
            for candidate in ["type", "e.type", "e.e.type", "e.", "e.e.", "", "x"] {
                let listed = key_spellings(prefix, key).iter().any(|s| s == candidate);
                assert_eq!(spells(prefix, key, candidate), listed, "{prefix:?} {key:?} {candidate:?}");
            }
        }
    }

    #[test]
    fn keys_map_with_or_without_prefix_and_pointers_by_head() {
        let d = from_toml(
            "name = \"t\"\nkey_prefix = \"segment_tracks.\"\n\
             [[column]]\nname = \"app_build\"\nkey = \"context_app_build\"\ntype = \"text\"\n\
             [[column]]\nname = \"version\"\nkey = \"/context/app/version\"\ntype = \"text\"\n",
        );
        let i = d.field_index("segment_tracks.context_app_build").unwrap();
        assert_eq!(d.fields[i].name, "app_build");
        assert_eq!(d.field_index("context_app_build"), Some(i));
        assert_eq!(d.field_index("app_build"), Some(i));
        assert_eq!(d.field_index("segment_tracks.nope"), None);
        assert_eq!(d.nested_fields("context"), Some(&[1][..]));
        assert_eq!(d.nested_fields("segment_tracks.context"), Some(&[1][..]));
        assert_eq!(Key::parse("/a~1b/c~0d"), Key::Pointer(vec!["a/b".into(), "c~d".into()]));
        assert_eq!(Key::parse("/a~1b/c~0d").display(), "/a~1b/c~0d");
    }
}

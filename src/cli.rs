//! The command line, declared once with clap derive. Commands live in `cmd/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::EXIT_CODES_HELP;
use crate::pg::load::Mode;

/// `--lake-format` (clap stays in this module).
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum LakeFormatArg {
    Hive,
    Iceberg,
}

impl From<LakeFormatArg> for crate::lake::Format {
    fn from(f: LakeFormatArg) -> crate::lake::Format {
        match f {
            LakeFormatArg::Hive => crate::lake::Format::Hive,
            LakeFormatArg::Iceberg => crate::lake::Format::Iceberg,
        }
    }
}

/// `--mode`, mapped onto the loader's `Mode` (clap stays in this module).
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum ModeArg {
    /// Swap in a new table atomically.
    Replace,
    /// Add rows; a file already in the ledger is refused unless --force.
    Append,
    /// Upsert on the contract's `unique` key: new keys inserted, changed rows updated.
    Merge,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Replace => Mode::Replace,
            ModeArg::Append => Mode::Append,
            ModeArg::Merge => Mode::Merge,
        }
    }
}

#[derive(Parser, Debug)]
#[command(name = "tier", version, about = "Load messy event exports into PostgreSQL, prove the load is right, and look at the result.", after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Directory with the exports; also holds log/ and the local cluster (pg/).
    #[arg(long, global = true, default_value = "data", env = "TIER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Directory of dataset contracts (<name>.toml). Without one, the two shipped examples.
    #[arg(long, global = true, value_name = "DIR", env = "TIER_DATASETS")]
    pub datasets: Option<PathBuf>,
    /// The longest record read whole; a longer one is one `malformed` reject (its first
    /// 64 KB kept) and reading goes on at the next line that starts an object.
    #[arg(long, global = true, value_name = "BYTES", default_value_t = crate::source::MAX_RECORD_BYTES, env = "TIER_MAX_RECORD_BYTES")]
    pub max_record_bytes: usize,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load the exports into PostgreSQL (every declared dataset, or the one named).
    ///
    /// Examples:
    ///   tier load                                        # every dataset, from DATA_DIR
    ///   tier load events --from 'exports/*.ndjson.gz' --jobs 4
    ///   tier load events --from s3://landing/events/ --mode merge --lake s3://lake
    #[command(after_help = EXIT_CODES_HELP, verbatim_doc_comment)]
    Load(LoadArgs),
    /// List the declared datasets and their columns; `datasets check` validates every contract.
    ///
    /// Examples:
    ///   tier datasets
    ///   tier datasets check
    #[command(after_help = EXIT_CODES_HELP, verbatim_doc_comment)]
    Datasets(DatasetsArgs),
    /// Read exports and print a contract for them (every record, all cores).
    ///
    /// Examples:
    ///   tier infer 'exports/*.ndjson.gz' --name events
    ///   tier infer 'exports/*.ndjson.gz' --name events --write
    #[command(after_help = EXIT_CODES_HELP, verbatim_doc_comment)]
    Infer(InferArgs),
    /// Write sample exports with a planted share of every known defect.
    ///
    /// Examples:
    ///   tier gen --events 100000 --weather 10000
    ///   tier gen --dataset events --records 10000 --defect-share 0.05
    #[command(verbatim_doc_comment)]
    Gen(GenArgs),
    /// Manage the project-local PostgreSQL cluster under DATA_DIR/pg.
    ///
    /// Examples:
    ///   tier db start
    ///   tier db status
    #[command(verbatim_doc_comment)]
    Db(DbArgs),
    /// Look after the Iceberg lake (`load --lake-format iceberg`): snapshots, expiry, unused files.
    ///
    /// Examples:
    ///   tier lake show
    ///   tier lake expire track_events --older-than 30d
    ///   tier lake gc --grace 1h --dry-run
    ///   tier lake compact weather
    ///   tier lake check
    #[command(verbatim_doc_comment)]
    Lake(LakeArgs),
    /// Compare the source files with what PostgreSQL holds (counts, reasons, days, contents).
    ///
    /// Examples:
    ///   tier validate
    ///   tier validate events --from 'exports/*.ndjson.gz' --reread
    #[command(after_help = EXIT_CODES_HELP, verbatim_doc_comment)]
    Validate(ValidateArgs),
    /// Run the contracts' declared checks ([[check]]) over what the tables hold now: each
    /// measure, per day or whole, against its thresholds and its own past; every evaluation
    /// kept in tier_checks. Exit 1 when a check fails (--strict: or warns).
    ///
    /// Examples:
    ///   tier check
    ///   tier check track_events --format json
    #[command(after_help = EXIT_CODES_HELP, verbatim_doc_comment)]
    Check(CheckArgs),
    /// Run a saved query and print the result (table, CSV, JSON, NDJSON or Parquet).
    ///
    /// Examples:
    ///   tier query queries/daily.sql
    ///   tier query rejects.sql --param reason=bad_timestamp --format csv -o rejects.csv
    ///   tier query --lake lake queries/daily.sql
    #[command(after_help = EXIT_CODES_HELP, verbatim_doc_comment)]
    Query(QueryArgs),
    /// Run every saved query and write reports/report.html (self-contained) and report.md.
    ///
    /// Examples:
    ///   tier report
    ///   tier report --watch
    #[command(after_help = EXIT_CODES_HELP, verbatim_doc_comment)]
    Report(ReportArgs),
    /// The whole job on a fresh clone: sample data if DATA_DIR has none, a database if none
    /// is configured, then load, validate and write the report.
    ///
    /// Examples:
    ///   tier demo
    #[command(after_help = EXIT_CODES_HELP, verbatim_doc_comment)]
    Demo(DemoArgs),
    /// Print a shell's completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Example:\n  tier completions bash > ~/.local/share/bash-completion/completions/tier")]
    Completions(CompletionsArgs),
    /// Write the man pages (tier.1 and one per command) into a directory.
    #[command(after_help = "Example:\n  tier man --out ~/.local/share/man/man1 && man tier-load")]
    Man(ManArgs),
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Directory for the pages (made if missing).
    #[arg(long, default_value = "man")]
    pub out: PathBuf,
}

/// How to reach PostgreSQL.
#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// postgresql://user[:password]@host:port/db. Else DATABASE_URL, else the PG* variables
    /// (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE), else localhost:5432, else a local
    /// cluster under DATA_DIR/pg started from the installed PostgreSQL binaries.
    #[arg(long, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Schema that holds the tables and the tier_loads ledger.
    #[arg(long, default_value = "public", value_parser = schema_name, env = "TIER_SCHEMA")]
    pub schema: String,
}

/// The Iceberg lake's catalog name (`catalog_name` in the catalog's tables).
#[derive(Args, Debug, Clone)]
pub struct LakeCatalogArg {
    /// The Iceberg lake's catalog name, as other engines are told it (catalog_name in
    /// iceberg_tables).
    #[arg(long = "lake-catalog", value_name = "NAME", env = "TIER_LAKE_CATALOG", default_value = "tier")]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Which dataset to load (a declared name). Default: every declared dataset.
    pub table: Option<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// replace: swap in a new table atomically; append: add rows, refusing a file already
    /// loaded; merge: upsert on the contract's `unique` key (later rows win, nothing is
    /// deleted). Default: the contract's `mode`, else replace, or append with --from.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Load these into TABLE instead of DATA_DIR/TABLE.json: files, directories (their
    /// *.json and *.json.gz) or globs ('data/events/*.json.gz'), objects (s3://bucket/prefix/),
    /// or a Kafka topic (kafka://HOST:PORT/TOPIC[?partitions=0,1]). Each file is its own
    /// append, recorded by checksum, so a re-run after a crash loads only what is missing;
    /// a topic's batches are recorded by partition and offsets, each message loaded once.
    #[arg(long = "from", value_name = "PATH|GLOB|URL", requires = "table")]
    pub from: Vec<String>,
    /// Where a topic's partition begins when the ledger has loaded none of it: `earliest`,
    /// `latest`, or a time (RFC 3339: the first message at or after it). After that, each
    /// load starts after the last offset loaded.
    #[arg(long, value_name = "earliest|latest|TIME", default_value = "earliest", value_parser = crate::jobs::stream::parse_start)]
    pub start: crate::source::kafka::Start,
    /// Keep loading until SIGTERM or Ctrl-C: a topic's messages as they come (a batch
    /// whenever a partition has new ones; a stop commits the batch in flight), or the new
    /// exports of --from's directories, prefixes and globs, listed every --every seconds.
    #[arg(long, requires = "from")]
    pub follow: bool,
    /// With --follow on directories, prefixes or globs: seconds between listings.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, requires = "follow")]
    pub every: f64,
    /// The most messages a batch from a topic holds: each batch is one transaction and one
    /// ledger entry with its offsets.
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_rows: u64,
    /// A batch from a topic ends once its messages' values reach this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_bytes: u64,
    /// With --follow, a batch ends this many seconds after it began even if messages keep
    /// coming (it ends sooner once it has read all there is).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub batch_wait: f64,
    /// Also write the accepted rows to a lake under DIR (or s3://bucket/prefix): an Apache
    /// Iceberg table per table, committed with the load (see --lake-format).
    #[arg(long, value_name = "DIR")]
    pub lake: Option<PathBuf>,
    /// The lake's layout: `iceberg` (an Apache Iceberg table per table, its catalog in the
    /// database, each load one snapshot committed in the load's own transaction) or `hive`
    /// (DIR/<table>/date=YYYY-MM-DD/part-<load>.parquet, published after the database commit).
    #[arg(long, value_enum, default_value = "iceberg", requires = "lake")]
    pub lake_format: LakeFormatArg,
    #[command(flatten)]
    pub lake_catalog: LakeCatalogArg,
    /// Print the inputs --from names (paths, object URLs), one per line, and load nothing:
    /// what an orchestrator maps one load task over.
    #[arg(long, requires = "from")]
    pub list: bool,
    /// Files loaded at the same time with --from.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// In append or merge mode, load a file even if the ledger says it was loaded before.
    #[arg(long)]
    pub force: bool,
    /// Accept an input with no records (replace then empties the table).
    #[arg(long)]
    pub allow_empty: bool,
    /// Fail, keeping the previous table, when more than this share of records is rejected.
    #[arg(long, default_value_t = 0.5)]
    pub max_reject_ratio: f64,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DatasetsArgs {
    #[command(subcommand)]
    pub action: Option<DatasetsAction>,
}

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum DatasetsAction {
    /// Validate every contract file; each mistake as FILE:line:column: message.
    Check,
}

#[derive(Args, Debug)]
pub struct InferArgs {
    /// Export files (.json, .json.gz), directories or globs: all of them are read.
    #[arg(required = true, value_name = "FILE|DIR|GLOB")]
    pub files: Vec<String>,
    /// The dataset's name. Default: the first file's name without extensions.
    #[arg(long)]
    pub name: Option<String>,
    /// Write the contract to DATASETS/<name>.toml instead of stdout (never over an existing one).
    #[arg(long)]
    pub write: bool,
    /// The most columns to propose: beyond it, the nested objects in the fewest records
    /// become one json column each.
    #[arg(long, value_name = "N", default_value_t = crate::infer::DEFAULT_MAX_COLUMNS, value_parser = clap::value_parser!(usize))]
    pub max_columns: usize,
    /// Split the log into one table per kind of record, the kind being the value at this
    /// key or JSON Pointer (`/type`): the envelope in DATASETS/<name>.toml, a file per kind
    /// in DATASETS/<name>/. Each table gets --max-columns.
    #[arg(long, value_name = "KEY")]
    pub split_by: Option<String>,
    /// Arrays become child tables this many levels deep (an array in an array's elements is
    /// a grandchild); 0 keeps every array a json column.
    #[arg(long, value_name = "N", default_value_t = crate::infer::DEFAULT_MAX_DEPTH)]
    pub max_depth: usize,
}

#[derive(Args, Debug)]
pub struct GenArgs {
    /// Sample data for this declared dataset (values that fit its contract, and a planted
    /// share of every defect its rules catch) instead of the two original exports.
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<String>,
    /// Records to write with --dataset.
    #[arg(long, default_value_t = 10_000)]
    pub records: u64,
    /// Number of track events.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Number of weather rows.
    #[arg(long, default_value_t = 10_000)]
    pub weather: u64,
    /// Random seed: the same seed writes the same files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of records with a defect, 0 to 1.
    #[arg(long, default_value_t = 0.02)]
    pub defect_share: f64,
    /// Output directory. Default: DATA_DIR.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DbArgs {
    #[command(subcommand)]
    pub action: DbAction,
}

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum DbAction {
    /// Create (if needed) and start the local cluster; print its URL.
    Start,
    /// Stop the local cluster.
    Stop,
    /// Say whether the local cluster is running.
    Status,
    /// Print the local cluster's URL.
    Url,
}

#[derive(Args, Debug)]
pub struct LakeArgs {
    #[command(subcommand)]
    pub action: LakeAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum LakeAction {
    /// The snapshots of each lake table of the schema (or TABLE), oldest first, with the tier
    /// load that committed each.
    Show {
        #[command(flatten)]
        lake: LakeTables,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove the snapshots committed longer ago than --older-than (never the current one,
    /// nor the --retain-last newest); their files go at the next `gc`.
    Expire {
        #[command(flatten)]
        lake: LakeTables,
        /// Age, as 90s, 45m, 12h or 30d.
        #[arg(long, value_parser = duration)]
        older_than: std::time::Duration,
        /// Snapshots kept whatever their age, newest first.
        #[arg(long, default_value_t = 1)]
        retain_last: usize,
    },
    /// Delete the files under a lake table that no kept snapshot uses (a killed load's, an
    /// expired snapshot's), once older than --grace.
    Gc {
        #[command(flatten)]
        lake: LakeTables,
        /// Files younger than this are left (a load may still be writing them).
        #[arg(long, value_parser = duration, default_value = "1h")]
        grace: std::time::Duration,
        /// List what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Compare each lake table's rows per day (as its current snapshot counts them) with the
    /// database table's; exit 1 where they differ.
    Check {
        #[command(flatten)]
        lake: LakeTables,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Rewrite each partition (day) that has several data files as one, in one snapshot
    /// (appends of small files add up); the old files go at the next `gc` after `expire`.
    Compact {
        #[command(flatten)]
        lake: LakeTables,
    },
}

/// Which lake tables a `tier lake` command works on, and where their catalog is.
#[derive(Args, Debug, Clone)]
pub struct LakeTables {
    /// One lake table (default: every one in the catalog for the schema).
    pub table: Option<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub catalog: LakeCatalogArg,
}

impl LakeAction {
    pub fn tables(&self) -> &LakeTables {
        match self {
            LakeAction::Show { lake, .. }
            | LakeAction::Expire { lake, .. }
            | LakeAction::Gc { lake, .. }
            | LakeAction::Check { lake, .. }
            | LakeAction::Compact { lake } => lake,
        }
    }
}

/// A duration as 90s, 45m, 12h or 30d.
pub fn duration(s: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = s.trim().split_at(s.trim().len().saturating_sub(1));
    let n: u64 = number.parse().map_err(|_| format!("{s:?}: a number and a unit (s, m, h or d), as 30d"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(seconds))
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Track events to generate when DATA_DIR has no exports.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Weather rows to generate when DATA_DIR has no exports.
    #[arg(long, default_value_t = 20_000)]
    pub weather: u64,
    /// Directory of saved queries for the report.
    #[arg(long, default_value = "queries")]
    pub queries: PathBuf,
    /// Where the report goes.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum FormatArg {
    Table,
    Csv,
    Json,
    Ndjson,
    Parquet,
}

impl From<FormatArg> for crate::render::export::Format {
    fn from(f: FormatArg) -> Self {
        use crate::render::export::Format;
        match f {
            FormatArg::Table => Format::Table,
            FormatArg::Csv => Format::Csv,
            FormatArg::Json => Format::Json,
            FormatArg::Ndjson => Format::Ndjson,
            FormatArg::Parquet => Format::Parquet,
        }
    }
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The saved query, e.g. queries/daily.sql.
    pub file: PathBuf,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub format: FormatArg,
    /// Write here instead of stdout ("-" is stdout).
    #[arg(long, short)]
    pub output: Option<String>,
    /// Fill a :name placeholder: --param name=value (quoted by PostgreSQL, never pasted raw).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub param: Vec<String>,
    /// Allow the query to write (queries run read-only otherwise).
    #[arg(long)]
    pub write: bool,
    /// Rows shown in table format (0 = all).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Read the result split into ranges of this integer column of the result, rows coming
    /// back range by range (over several connections at once for table and json; csv is one
    /// COPY by the server whatever this says).
    #[arg(long, value_name = "COLUMN", value_parser = schema_name)]
    pub partition_on: Option<String>,
    /// How many ranges (and connections) with --partition-on.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub partitions: u16,
    /// Run the SQL over a lake written by `load --lake DIR` with Polars, no PostgreSQL needed.
    #[arg(long, value_name = "DIR")]
    pub lake: Option<PathBuf>,
    /// Run the SQL with Polars over the schema's Iceberg lake tables (`load --lake-format
    /// iceberg`), found through their catalog in the database.
    #[arg(long, conflicts_with = "lake")]
    pub iceberg: bool,
    /// With --iceberg: each table as of this load (the ledger's id): the snapshot that load
    /// committed, or the latest before it.
    #[arg(long, value_name = "LOAD", requires = "iceberg")]
    pub as_of: Option<i64>,
    #[command(flatten)]
    pub lake_catalog: LakeCatalogArg,
}

impl Cli {
    /// The command line with the declared dataset names as the possible values of the
    /// commands that take one (so `--help` and completion list them).
    pub fn command_with(datasets: &[String]) -> clap::Command {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        if !datasets.is_empty() {
            for sub in ["load", "validate"] {
                let names = datasets.to_vec();
                cmd = cmd.mut_subcommand(sub, |c| c.mut_arg("table", |a| a.value_parser(clap::builder::PossibleValuesParser::new(names))));
            }
        }
        cmd
    }
}

/// Writes `shell`'s completion script for the command line (the declared datasets' names
/// among the values) to `out`.
pub fn completions(shell: clap_complete::Shell, datasets: &[String], out: &mut dyn std::io::Write) {
    let mut cmd = Cli::command_with(datasets);
    clap_complete::generate(shell, &mut cmd, "tier", out);
}

/// Writes `tier.1` and `tier-<command>.1` for every command into `dir`; returns the files.
pub fn man_pages(datasets: &[String], dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command_with(datasets);
    let mut written = Vec::new();
    let mut page = |name: String, c: clap::Command| -> std::io::Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut file = std::fs::File::create(&path)?;
        clap_mangen::Man::new(c).render(&mut file)?;
        written.push(path);
        Ok(())
    };
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        page(format!("tier-{}", sub.get_name()), sub.clone().name(format!("tier-{}", sub.get_name())))?;
    }
    page("tier".into(), cmd)?;
    Ok(written)
}

/// Schema names reach SQL and connection options: letters, digits and _, not starting
/// with a digit, at most 63 bytes (PostgreSQL's limit).
pub fn schema_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a plain identifier (letters, digits, _)"))
    }
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Which dataset to check (a declared name). Default: every declared dataset.
    pub table: Option<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// table (for people) or json (for machines).
    #[arg(long, value_enum, default_value = "table")]
    pub format: CheckFormat,
    /// Parse the source files again instead of trusting the figures their load recorded in
    /// the ledger (used by default when a file's checksum matches a load's).
    #[arg(long)]
    pub reread: bool,
    /// Check these inputs of TABLE instead of its default ones: files, directories, globs,
    /// or objects (s3://bucket/prefix/, a glob, an object), as `load --from` takes them; or
    /// a Kafka topic (kafka://HOST:PORT/TOPIC): each batch the ledger records read again
    /// from the topic, and each partition's offsets checked for gaps and overlaps.
    #[arg(long = "from", value_name = "PATH|GLOB|URL", requires = "table")]
    pub from: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Which dataset's checks to run (a declared name, or one table of a split log such as hooks_push). Default: every declared dataset's.
    pub table: Option<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// table (for people: what warned or failed, and how many groups passed), json (every
    /// evaluation) or junit (JUnit XML, a test case per evaluation, for CI systems).
    #[arg(long, value_enum, default_value = "table")]
    pub format: DeclaredCheckFormat,
    /// Exit 1 when a check warns, too.
    #[arg(long)]
    pub strict: bool,
    /// Only the rows on this day (YYYY-MM-DD) or after (the contract's `day` column).
    #[arg(long, value_name = "DAY", value_parser = parse_day)]
    pub since: Option<String>,
    /// Only the rows on this day (YYYY-MM-DD) or before.
    #[arg(long, value_name = "DAY", value_parser = parse_day)]
    pub until: Option<String>,
    /// Only the rows of each table's latest load (rejects too, for reject_share).
    #[arg(long)]
    pub latest_load: bool,
}

/// A day as `YYYY-MM-DD`.
fn parse_day(text: &str) -> Result<String, String> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.to_string())
        .map_err(|e| format!("{text:?}: a day such as 2026-11-30 ({e})"))
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredCheckFormat {
    Table,
    Json,
    Junit,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Directory of saved queries (*.sql).
    #[arg(long, default_value = "queries")]
    pub queries: PathBuf,
    /// Where report.html, report.md and report.ipynb go.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Which files to write: html, md, ipynb (a Jupyter notebook), comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "html,md,ipynb")]
    pub format: Vec<ReportFormat>,
    /// Keep running: write the report again whenever a query file changes or a load lands.
    #[arg(long)]
    pub watch: bool,
}

/// A file `tier report` writes.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Md,
    Ipynb,
}

impl From<ReportFormat> for crate::render::report::Format {
    fn from(format: ReportFormat) -> Self {
        match format {
            ReportFormat::Html => Self::Html,
            ReportFormat::Md => Self::Markdown,
            ReportFormat::Ipynb => Self::Notebook,
        }
    }
}

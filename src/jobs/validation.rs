//! A validation run: each dataset's files (read again, or their figures from the ledger)
//! against what PostgreSQL holds, the two sides worked out at the same time.

use std::path::Path;

use anyhow::Result;

use crate::dataset::Dataset;
use crate::error::Failure;
use crate::pg::connect;
use crate::pg::ledger::{has_merges, ledger_source, ledger_split_source, merged_file, object_checksum};
use crate::pg::validation::{read_database, settle, DatabaseSide};
use crate::pg::Client;
use crate::progress::FileBars;
use crate::source::Input;
use crate::validate::{compare, compare_split, read_source, read_split_source, Check};

/// Checks each dataset's input files against what PostgreSQL holds for them.
pub fn validate_all(
    datasets: &[&'static Dataset],
    data_dir: &Path,
    target: &connect::Target,
    schema: &str,
    quiet: bool,
    reread: bool,
) -> Result<Vec<Check>> {
    let mut work: Vec<(&'static Dataset, Input)> = Vec::new();
    for ds in datasets {
        for path in crate::jobs::load::inputs(ds, data_dir)? {
            work.push((ds, Input::File(path)));
        }
    }
    validate_work(work, target, schema, quiet, reread)
}

/// Checks each (dataset, input) pair against what PostgreSQL holds for it.
pub fn validate_work(
    work: Vec<(&'static Dataset, Input)>,
    target: &connect::Target,
    schema: &str,
    quiet: bool,
    reread: bool,
) -> Result<Vec<Check>> {
    // The files are independent: each is checked on its own threads.
    // Two at a time: each file already keeps several threads busy.
    let bars = FileBars::new(quiet);
    let mut checks = Vec::new();
    for batch in work.chunks(2) {
        let results: Vec<Result<Vec<Check>>> = std::thread::scope(|scope| {
            let running: Vec<_> =
                batch.iter().map(|(ds, input)| scope.spawn(|| validate_table(ds, input, target, schema, &bars, reread))).collect();
            running.into_iter().map(|r| r.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a validation thread panicked")))).collect()
        });
        for r in results {
            checks.extend(r?);
        }
    }
    Ok(checks)
}

/// One file: PostgreSQL's side is read (one aggregate query) while this side gets the
/// file's figures: from the ledger when a load of a file with the same checksum recorded
/// them, else (or with `reread`) by reading the file with the load's own code.
fn validate_table(
    ds: &'static Dataset,
    input: &Input,
    target: &connect::Target,
    schema: &str,
    bars: &FileBars,
    reread: bool,
) -> Result<Vec<Check>> {
    if ds.writes_many() {
        return validate_split(ds, input, target, schema, bars, reread);
    }
    let mut client = connect::connect(target, 3)?;
    // A merged file is read as the merge read it (the later row with a key wins); which
    // files were merged the ledger says, by checksum.
    let merges = has_merges(ds, &mut client, schema)?;
    // The input's checksum: a file's is computed (BLAKE3, fast; while the server reads its
    // side); an object's is the one its load recorded for the same URL, ETag and size (none:
    // the object is read).
    let recorded_sum = match input {
        Input::Object(o) => object_checksum(ds, &mut client, schema, &o.url, o.etag.as_deref(), o.size)?,
        Input::File(_) | Input::Kafka(_) => None,
    };
    let checksum = || -> Result<Option<String>> {
        match input {
            Input::File(path) => Ok(Some(crate::pipeline::checksum_file(path)?)),
            Input::Object(_) | Input::Kafka(_) => Ok(recorded_sum.clone()),
        }
    };
    let superseding = match merges {
        true => match checksum()? {
            Some(sum) => merged_file(ds, &mut client, schema, &sum)?,
            None => false,
        },
        false => false,
    };
    // Trusting the ledger, this process only hashes the file meanwhile: the server's
    // aggregate, the longest part, is split over a second connection (the server's planner
    // will not split it). Rereading, this process's parsing keeps the cores busy already.
    let mut helpers = match reread {
        true => Vec::new(),
        false => vec![connect::connect(target, 3)?],
    };
    let schema_owned = schema.to_string();
    let database =
        std::thread::spawn(move || read_database(ds, &mut client, &mut helpers, &schema_owned).map(|side| (side, client, helpers)));
    let join = |h: std::thread::JoinHandle<Result<(DatabaseSide, Client, Vec<Client>)>>| {
        h.join().map_err(|_| anyhow::anyhow!("the database reader panicked"))?
    };
    if !reread {
        let known = checksum()?;
        let (database, mut client, mut helpers) = join(database)?;
        let recorded = match &known {
            Some(sum) => ledger_source(ds, &mut client, schema, sum)?,
            None => None,
        };
        if let (Some(checksum), Some((load, source))) = (known, recorded) {
            bars.note(&format!(
                "{}: {}: figures as load {load} recorded them (same checksum); --reread parses the file again",
                ds.name,
                input.name()
            ));
            let database = settle(ds, &mut client, &mut helpers, schema, database, &checksum)?;
            return Ok(compare(ds, &source, &database));
        }
        let source = read_file(ds, input, superseding, bars)?;
        let database = settle(ds, &mut client, &mut helpers, schema, database, &source.checksum)?;
        return Ok(compare(ds, &source, &database));
    }
    let source = read_file(ds, input, superseding, bars);
    let (database, mut client, mut helpers) = join(database)?;
    let source = source?;
    let database = settle(ds, &mut client, &mut helpers, schema, database, &source.checksum)?;
    Ok(compare(ds, &source, &database))
}

/// One file of a split log: its figures per table (from the ledger, or read again) against
/// each table's rows of its load, the log's rejects against the file's.
fn validate_split(
    log: &'static Dataset,
    input: &Input,
    target: &connect::Target,
    schema: &str,
    bars: &FileBars,
    reread: bool,
) -> Result<Vec<Check>> {
    let mut client = connect::connect(target, 3)?;
    let merges = has_merges(log, &mut client, schema)?;
    // The input's checksum, when it is needed before the file is read (to find the ledger's
    // figures, or whether a merge read it): a file's computed, an object's as its load recorded.
    let checksum = match input {
        Input::File(_) if reread && !merges => None,
        Input::File(path) => Some(crate::pipeline::checksum_file(path)?),
        Input::Object(o) => object_checksum(log, &mut client, schema, &o.url, o.etag.as_deref(), o.size)?,
        Input::Kafka(_) => None,
    };
    let recorded = match (&checksum, reread) {
        (Some(sum), false) => ledger_split_source(log, &mut client, schema, sum)?,
        _ => None,
    };
    let source = match recorded {
        Some((load, source)) => {
            bars.note(&format!(
                "{}: {}: figures as load {load} recorded them (same checksum); --reread parses the file again",
                log.name,
                input.name()
            ));
            source
        }
        None => {
            // A merged file is read as the merge read it.
            let superseding = match (&checksum, merges) {
                (Some(sum), true) => merged_file(log, &mut client, schema, sum)?,
                _ => false,
            };
            let bar = bars.add(&log.name, input.size());
            let source = read_split_source(log, input, superseding, &bar);
            bar.finish();
            source?
        }
    };
    let mut sides = Vec::new();
    for table in log.tables() {
        let side = read_database(table, &mut client, &mut Vec::new(), schema)?;
        sides.push((table, settle(table, &mut client, &mut [], schema, side, &source.checksum)?));
    }
    Ok(compare_split(log, &source, &sides))
}

fn read_file(ds: &'static Dataset, input: &Input, superseding: bool, bars: &FileBars) -> Result<crate::figures::SourceSide> {
    let bar = bars.add(&ds.name, input.size());
    let source = read_source(ds, input, superseding, &bar);
    bar.finish();
    source
}

pub fn verdict(checks: &[Check]) -> Result<()> {
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        eprintln!("all {} checks match", checks.len());
        Ok(())
    } else {
        Err(Failure::Differences(format!("{failed} of {} checks differ between the source files and PostgreSQL", checks.len())).into())
    }
}

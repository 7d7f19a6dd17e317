use std::path::Path;

use anyhow::Result;

use crate::cli::{CheckFormat, ValidateArgs};
use crate::contract::Catalog;
use crate::dataset::Dataset;
use crate::error::Failure;
use crate::pg::{self, connect};
use crate::progress::FileBars;
use crate::validate::{compare, ledger_source, read_database, read_source, settle, Check, DatabaseSide};

/// Checks every table (or the one named); differences are an error with exit code 1.
pub fn run(args: &ValidateArgs, catalog: &Catalog, data_dir: &Path, quiet: bool) -> Result<()> {
    let datasets = match &args.table {
        Some(name) => vec![catalog.get(name)?],
        None => catalog.datasets.clone(),
    };
    let checks = validate_all(&datasets, data_dir, args.conn.database_url.as_deref(), &args.conn.schema, quiet, args.reread)?;
    if args.format == CheckFormat::Json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        println!("{}", crate::render::checks::table(&checks));
    }
    verdict(&checks)
}

/// Checks each dataset's input files against what PostgreSQL holds for them.
pub fn validate_all(
    datasets: &[&'static Dataset],
    data_dir: &Path,
    database_url: Option<&str>,
    schema: &str,
    quiet: bool,
    reread: bool,
) -> Result<Vec<Check>> {
    let target = pg::reach(database_url, data_dir)?;
    let mut work: Vec<(&'static Dataset, std::path::PathBuf)> = Vec::new();
    for ds in datasets {
        for path in super::load::inputs(ds, data_dir)? {
            work.push((ds, path));
        }
    }
    // The files are independent: each is checked on its own threads.
    // Two at a time: each file already keeps several threads busy.
    let bars = FileBars::new(quiet);
    let mut checks = Vec::new();
    for batch in work.chunks(2) {
        let results: Vec<Result<Vec<Check>>> = std::thread::scope(|scope| {
            let running: Vec<_> =
                batch.iter().map(|(ds, path)| scope.spawn(|| validate_table(ds, path, &target, schema, &bars, reread))).collect();
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
    path: &Path,
    target: &connect::Target,
    schema: &str,
    bars: &FileBars,
    reread: bool,
) -> Result<Vec<Check>> {
    let mut client = connect::connect(target, 3)?;
    // A merged file is read as the merge read it (the later row with a key wins); which
    // files were merged the ledger says, by checksum.
    let merges = crate::validate::has_merges(ds, &mut client, schema)?;
    let superseding = match merges {
        true => crate::validate::merged_file(ds, &mut client, schema, &crate::pipeline::checksum_file(path)?)?,
        false => false,
    };
    let schema_owned = schema.to_string();
    let database = std::thread::spawn(move || read_database(ds, &mut client, &schema_owned).map(|side| (side, client)));
    let join = |h: std::thread::JoinHandle<Result<(DatabaseSide, postgres::Client)>>| {
        h.join().map_err(|_| anyhow::anyhow!("the database reader panicked"))?
    };
    if !reread {
        let checksum = crate::pipeline::checksum_file(path)?;
        let (database, mut client) = join(database)?;
        if let Some((load, source)) = ledger_source(ds, &mut client, schema, &checksum)? {
            bars.note(&format!(
                "{}: {}: figures as load {load} recorded them (same checksum); --reread parses the file again",
                ds.name,
                path.display()
            ));
            let database = settle(ds, &mut client, schema, database, &checksum)?;
            return Ok(compare(ds, &source, &database));
        }
        let source = read_file(ds, path, superseding, bars)?;
        let database = settle(ds, &mut client, schema, database, &source.checksum)?;
        return Ok(compare(ds, &source, &database));
    }
    let source = read_file(ds, path, superseding, bars);
    let (database, mut client) = join(database)?;
    let source = source?;
    let database = settle(ds, &mut client, schema, database, &source.checksum)?;
    Ok(compare(ds, &source, &database))
}

fn read_file(ds: &'static Dataset, path: &Path, superseding: bool, bars: &FileBars) -> Result<crate::validate::SourceSide> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = bars.add(&ds.name, size);
    let source = read_source(ds, path, superseding, &bar);
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

use std::path::Path;

use anyhow::Result;

use crate::cli::LoadArgs;
use crate::dataset::{self, Dataset};
use crate::error::Failure;
use crate::pg::{self, connect};
use crate::pipeline::{load_file, LoadOptions};
use crate::progress::FileBar;
use crate::render::summary;
use crate::stats::LoadStats;

pub fn run(args: &LoadArgs, data_dir: &Path, quiet: bool) -> Result<()> {
    let datasets: Vec<&'static Dataset> = match &args.table {
        Some(name) => vec![Dataset::by_name(name).expect("clap only accepts declared tables")],
        None => dataset::ALL.to_vec(),
    };
    let opts = LoadOptions {
        schema: args.conn.schema.clone(),
        mode: args.mode.into(),
        force: args.force,
        allow_empty: args.allow_empty,
        max_reject_ratio: args.max_reject_ratio,
    };
    let target = pg::reach(args.conn.database_url.as_deref(), data_dir)?;
    tracing::info!("loading into {} (from {})", connect::redact(&target.url), target.origin.describe());
    let (done, failed) = load_all(&datasets, data_dir, &opts, &target, quiet);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    } else if !done.is_empty() {
        println!("{}", summary::table(&done));
    }
    report_failures(failed)
}

/// Loads each dataset from `DATA_DIR/<table>.json`, each in its own transaction. A
/// failed table is reported and the others still load (like ripgrep with a bad file).
pub fn load_all(datasets: &[&'static Dataset], data_dir: &Path, opts: &LoadOptions, target: &connect::Target, quiet: bool) -> (Vec<LoadStats>, Vec<anyhow::Error>) {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for ds in datasets {
        let path = data_dir.join(ds.file_name());
        match load_one(ds, &path, opts, target, quiet) {
            Ok(stats) => done.push(stats),
            Err(e) => {
                record_failure(ds, &path, opts, target, &e);
                failed.push(e);
            }
        }
    }
    (done, failed)
}

fn load_one(ds: &'static Dataset, path: &Path, opts: &LoadOptions, target: &connect::Target, quiet: bool) -> Result<LoadStats> {
    if !path.exists() {
        return Err(Failure::Input(format!("{}: no such file (run `tier gen` for sample data)", path.display())).into());
    }
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let client = connect::connect(target, 5)?;
    let bar = FileBar::new(ds.name, size, quiet);
    let result = load_file(ds, path, opts, client, &bar);
    bar.finish();
    result
}

/// Puts a failed load on record in the ledger, if the database can still be reached.
fn record_failure(ds: &Dataset, path: &Path, opts: &LoadOptions, target: &connect::Target, err: &anyhow::Error) {
    let stats = LoadStats { table: ds.name.to_string(), file: path.display().to_string(), ..Default::default() };
    let attempt = connect::connect(target, 1).and_then(|mut c| {
        pg::load::ensure_ledger(&mut c, &opts.schema)?;
        pg::load::insert_ledger(&mut c, &opts.schema, None, &stats, opts.mode, std::time::SystemTime::now(), "failed", Some(&format!("{err:#}")))
    });
    if let Err(e) = attempt {
        tracing::debug!("could not record the failure in the ledger: {e:#}");
    }
}

pub fn report_failures(mut failed: Vec<anyhow::Error>) -> Result<()> {
    match failed.len() {
        0 => Ok(()),
        1 => Err(failed.remove(0)),
        n => {
            let last = failed.pop().expect("n > 1");
            for e in failed {
                eprintln!("tier: error: {e:#}");
            }
            Err(last.context(format!("{n} tables failed to load")))
        }
    }
}

//! Loading: a dataset's default inputs under the data directory, --from's files and objects
//! expanded, every dataset or file loaded (files side by side), failures put on record.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::dataset::Dataset;
use crate::error::Failure;
use crate::pg::load::Mode;
use crate::pg::{self, connect};
use crate::pipeline::{load_file, AfterCommits, LoadOptions};
use crate::progress::FileBar;
use crate::source::{object, Input};
use crate::stats::LoadStats;

/// A dataset's default input under the data directory (its contract's `file`): one file,
/// or the files of a directory or glob.
pub fn inputs(ds: &Dataset, data_dir: &Path) -> Result<Vec<PathBuf>> {
    let spec = data_dir.join(&ds.file);
    // A name with an export's extension is one file, even if something else stands there
    // (the reader then says what is wrong with it).
    let names_a_file = EXPORT_ENDINGS.iter().chain(&[".gz"]).any(|x| ds.file.to_ascii_lowercase().ends_with(x));
    if spec.is_file() || (names_a_file && !ds.file.contains(['*', '?', '['])) || !(spec.is_dir() || ds.file.contains(['*', '?', '['])) {
        if !spec.exists() {
            return Err(Failure::Input(format!("{}: no such file (run `tier gen` for sample data)", spec.display())).into());
        }
        return Ok(vec![spec]);
    }
    expand(&[spec.display().to_string()])
}

/// Loads each dataset from its input under the data directory, each in its own
/// transaction. A failed table is reported and the others still load (like ripgrep with
/// a bad file). A dataset whose input is many files appends each (unless `mode` says
/// otherwise, which then must fit).
pub fn load_all(
    datasets: &[&'static Dataset],
    data_dir: &Path,
    opts: &LoadOptions,
    explicit_mode: Option<Mode>,
    target: &connect::Target,
    quiet: bool,
    jobs: usize,
) -> (Vec<LoadStats>, Vec<anyhow::Error>) {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let after = AfterCommits::default();
    for ds in datasets {
        let files = match inputs(ds, data_dir) {
            Ok(f) => f,
            Err(e) => {
                failed.push(e);
                continue;
            }
        };
        let single = files.len() == 1 && data_dir.join(&ds.file).is_file();
        // The command line's mode, else the contract's.
        let chosen = explicit_mode.or(ds.mode);
        if !single {
            if chosen == Some(Mode::Replace) {
                failed
                    .push(Failure::Input(format!("{}: {} files; replace loads one file, use --mode append", ds.file, files.len())).into());
                continue;
            }
            let many_opts = LoadOptions { mode: chosen.unwrap_or(Mode::Append), ..opts.clone() };
            let files: Vec<Input> = files.into_iter().map(Input::File).collect();
            let (d, f) = load_many(ds, &files, &many_opts, target, jobs.max(1));
            done.extend(d);
            failed.extend(f);
            continue;
        }
        let path = &files[0];
        let one_opts = LoadOptions { mode: chosen.unwrap_or(opts.mode), ..opts.clone() };
        match load_one(ds, path, &one_opts, target, quiet, &after) {
            Ok(stats) => done.push(stats),
            Err(e) => {
                record_failure(ds, &path.display().to_string(), opts, target, &e);
                failed.push(e);
            }
        }
    }
    after.wait();
    (done, failed)
}

fn load_one(
    ds: &'static Dataset,
    path: &Path,
    opts: &LoadOptions,
    target: &connect::Target,
    quiet: bool,
    after: &AfterCommits,
) -> Result<LoadStats> {
    if !path.exists() {
        return Err(Failure::Input(format!("{}: no such file (run `tier gen` for sample data)", path.display())).into());
    }
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let client = connect::connect(target, 5)?;
    let bar = FileBar::new(&ds.name, size, quiet);
    let result = load_file(ds, &Input::File(path.to_path_buf()), opts, client, &bar, after);
    bar.finish();
    result
}

/// Puts a failed load on record in the ledger, if the database can still be reached.
pub fn record_failure(ds: &Dataset, file: &str, opts: &LoadOptions, target: &connect::Target, err: &anyhow::Error) {
    let stats = LoadStats { table: ds.name.clone(), file: file.to_string(), ..Default::default() };
    let attempt = connect::connect(target, 1).and_then(|mut c| {
        // The failed load's own session may still hold its locks (a link that went silent
        // leaves it open on the server): the record waits for them a while, never for ever.
        pg::connect::exec(&mut c, "cannot record the failure", "SET lock_timeout = '10s'; SET statement_timeout = '30s'")?;
        pg::ledger::ensure_ledger(&mut c, &opts.schema)?;
        pg::ledger::insert_ledger(
            &mut c,
            &opts.schema,
            None,
            &stats,
            opts.mode,
            std::time::SystemTime::now(),
            "failed",
            Some(&format!("{err:#}")),
        )
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

/// What an export file's name ends in (plain, or gzipped).
const EXPORT_ENDINGS: [&str; 6] = [".json", ".json.gz", ".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz"];

/// Files from `--from` arguments: files, directories (their export files: .json, .ndjson,
/// .jsonl, each maybe .gz; sorted) and globs. An argument that matches nothing is an error.
pub fn expand(specs: &[String]) -> Result<Vec<std::path::PathBuf>> {
    expand_found(specs, false)
}

/// `expand`; a directory or glob with no export yet is none when `none_ok`.
fn expand_found(specs: &[String], none_ok: bool) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for spec in specs {
        let path = Path::new(spec);
        let mut found: Vec<std::path::PathBuf> = if path.is_dir() {
            std::fs::read_dir(path)
                .map_err(|e| Failure::Input(format!("{spec}: cannot list: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
                    p.is_file() && EXPORT_ENDINGS.iter().any(|x| name.ends_with(x))
                })
                .collect()
        } else if spec.contains(['*', '?', '[']) {
            glob::glob(spec)
                .map_err(|e| Failure::Input(format!("{spec}: not a valid pattern: {e}")))?
                .filter_map(|p| p.ok())
                .filter(|p| p.is_file())
                .collect()
        } else {
            vec![path.to_path_buf()]
        };
        if found.is_empty() && !(none_ok && (path.is_dir() || spec.contains(['*', '?', '[']))) {
            return Err(Failure::Input(format!("{spec}: no export files there")).into());
        }
        found.sort();
        files.extend(found);
    }
    files.dedup();
    Ok(files)
}

/// Inputs from `--from` arguments: object URLs (`s3://bucket/prefix/`, a glob, an object;
/// see `source::object`) and local files, directories and globs (see `expand`).
pub fn expand_inputs(specs: &[String]) -> Result<Vec<Input>> {
    expand_inputs_found(specs, false)
}

/// `expand_inputs`; a prefix, directory or glob with no export yet is none when `none_ok`.
fn expand_inputs_found(specs: &[String], none_ok: bool) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    let (urls, paths): (Vec<&String>, Vec<&String>) = specs.iter().partition(|s| object::is_url(s));
    for url in urls {
        inputs.extend(object::list(url, &EXPORT_ENDINGS_ANY, none_ok)?.into_iter().map(Input::Object));
    }
    if !paths.is_empty() {
        let paths: Vec<String> = paths.into_iter().cloned().collect();
        inputs.extend(expand_found(&paths, none_ok)?.into_iter().map(Input::File));
    }
    Ok(inputs)
}

/// Follows landing places (`--from` directories, S3 prefixes or globs, with `--follow`):
/// lists them every `every` and loads what the ledger does not hold yet, each export its
/// own append as a re-run loads it, until SIGTERM or Ctrl-C (the loads under way finish).
/// An export that fails, or whose bytes were loaded under another name, is not tried
/// again until the next start (the ledger has its failure; the log says which); the others
/// go on.
pub fn follow_inputs(
    ds: &'static Dataset,
    specs: &[String],
    opts: &LoadOptions,
    target: &connect::Target,
    jobs: usize,
    every: std::time::Duration,
) -> (Vec<LoadStats>, Vec<anyhow::Error>) {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let result = (|| -> Result<()> {
        let stop = crate::jobs::stop_on_signals()?;
        let stopped = || stop.load(std::sync::atomic::Ordering::SeqCst);
        let mut client = connect::connect(target, 5)?;
        pg::ledger::ensure_ledger(&mut client, &opts.schema)?;
        let mut gave_up: std::collections::HashSet<String> = Default::default();
        while !stopped() {
            let loaded = pg::ledger::loaded_files(&mut client, &opts.schema, &ds.name)?;
            let new: Vec<Input> = expand_inputs_found(specs, true)?
                .into_iter()
                .filter(|i| !loaded.contains(&i.name()) && !gave_up.contains(&i.name()))
                .collect();
            // A few at a time, so that a stop waits for the loads under way only.
            for group in new.chunks(jobs.max(1)) {
                if stopped() {
                    break;
                }
                let (d, f) = load_many(ds, group, opts, target, jobs);
                if d.len() < group.len() {
                    let now = pg::ledger::loaded_files(&mut client, &opts.schema, &ds.name)?;
                    gave_up.extend(group.iter().map(Input::name).filter(|n| !now.contains(n)));
                }
                for e in &f {
                    tracing::error!("{e:#}");
                }
                done.extend(d);
                failed.extend(f);
            }
            let listed = std::time::Instant::now();
            while !stopped() && listed.elapsed() < every {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        failed.push(e);
    }
    (done, failed)
}

/// What an export object's name ends in: plain, gzipped or zstd-compressed.
const EXPORT_ENDINGS_ANY: [&str; 9] =
    [".json", ".json.gz", ".json.zst", ".ndjson", ".ndjson.gz", ".ndjson.zst", ".jsonl", ".jsonl.gz", ".jsonl.zst"];

/// Loads many files into one table, `jobs` at a time, each file its own transaction and
/// ledger entry. Files the ledger already holds are skipped, so a re-run after a crash
/// loads only what is missing.
pub fn load_many(
    ds: &'static Dataset,
    files: &[Input],
    opts: &LoadOptions,
    target: &connect::Target,
    jobs: usize,
) -> (Vec<LoadStats>, Vec<anyhow::Error>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::new());
    let failed = Mutex::new(Vec::new());
    let skipped = AtomicUsize::new(0);
    let after = AfterCommits::default();
    // Merges run one file after another, in order: with a key in two files, the later
    // file's row is the one kept.
    let jobs = if opts.mode == Mode::Merge { 1 } else { jobs };
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(files.len()) {
            scope.spawn(|| {
                while let Some(input) = files.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let result = connect::connect(target, 5)
                        .and_then(|client| load_file(ds, input, opts, client, &crate::pipeline::NoProgress, &after));
                    match result {
                        Ok(stats) => {
                            tracing::info!("{}: {} loaded, {} rejected", input.name(), stats.loaded, stats.rejected_total());
                            done.lock().unwrap().push(stats);
                        }
                        Err(e) if e.chain().any(|c| matches!(c.downcast_ref::<Failure>(), Some(Failure::AlreadyLoaded(_)))) => {
                            tracing::info!("{}: already loaded, skipped", input.name());
                            skipped.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            record_failure(ds, &input.name(), opts, target, &e);
                            failed.lock().unwrap().push(e);
                        }
                    }
                }
            });
        }
    });
    after.wait();
    let mut done = done.into_inner().unwrap();
    done.sort_by(|a, b| a.file.cmp(&b.file));
    let skipped = skipped.into_inner();
    eprintln!(
        "{} of {} files loaded{}",
        done.len(),
        files.len(),
        if skipped > 0 { format!(", {skipped} already loaded (skipped)") } else { String::new() }
    );
    (done, failed.into_inner().unwrap())
}

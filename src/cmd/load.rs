//! `tier load`: every declared dataset from the data directory, or one from --from's files
//! and objects (`jobs::load` does the work).

use anyhow::Result;

use crate::cli::LoadArgs;
use crate::context::Context;
use crate::dataset::Dataset;
use crate::error::Failure;
use crate::jobs::load::*;
use crate::pg::connect;
use crate::pg::load::Mode;
use crate::pipeline::LoadOptions;
use crate::render::summary;

pub fn run(args: &LoadArgs, ctx: &Context) -> Result<()> {
    let (catalog, data_dir, quiet) = (ctx.catalog()?, ctx.data_dir.as_path(), ctx.quiet);
    let datasets: Vec<&'static Dataset> = match &args.table {
        Some(name) => vec![catalog.get(name)?],
        None => catalog.datasets.clone(),
    };
    let explicit_mode = args.mode.map(Mode::from);
    // With --from there is one dataset; its contract's mode applies, else append.
    let default_mode = if args.from.is_empty() { Mode::Replace } else { datasets[0].mode.unwrap_or(Mode::Append) };
    let opts = LoadOptions {
        schema: args.conn.schema.clone(),
        mode: explicit_mode.unwrap_or(default_mode),
        force: args.force,
        allow_empty: args.allow_empty,
        max_reject_ratio: args.max_reject_ratio,
        lake: args.lake.clone(),
        lake_format: args.lake_format.into(),
        lake_catalog: args.lake_catalog.name.clone(),
    };
    if let Some(url) = args.from.iter().find(|f| crate::source::kafka::is_url(f)) {
        if args.from.len() > 1 {
            return Err(Failure::Input(format!("{url}: a topic is loaded on its own (one --from)")).into());
        }
        let url = crate::source::kafka::TopicUrl::parse(url)?;
        if args.list {
            for name in crate::jobs::stream::partition_names(&url)? {
                println!("{name}");
            }
            return Ok(());
        }
        if !(args.batch_wait.is_finite() && args.batch_wait > 0.0) {
            return Err(Failure::Input(format!("--batch-wait {}: a number of seconds above 0", args.batch_wait)).into());
        }
        let limits = crate::source::kafka::BatchLimits {
            rows: args.batch_rows,
            bytes: args.batch_bytes,
            wait: Some(std::time::Duration::from_secs_f64(args.batch_wait)),
        };
        let stream = crate::jobs::stream::StreamOptions { start: args.start, limits, follow: args.follow };
        let (done, failed) = crate::jobs::stream::load_topic(datasets[0], &url, &opts, stream, ctx.target()?, args.jobs as usize, quiet);
        return finish(args, &done, failed);
    }
    if args.follow {
        if opts.mode == Mode::Replace {
            return Err(Failure::Input("--follow appends or merges each new export; it does not replace".into()).into());
        }
        if !(args.every.is_finite() && args.every > 0.0) {
            return Err(Failure::Input(format!("--every {}: a number of seconds above 0", args.every)).into());
        }
        let every = std::time::Duration::from_secs_f64(args.every);
        let (done, failed) = follow_inputs(datasets[0], &args.from, &opts, ctx.target()?, args.jobs as usize, every);
        return finish(args, &done, failed);
    }
    let files = if args.from.is_empty() { Vec::new() } else { expand_inputs(&args.from)? };
    if args.list {
        for f in &files {
            println!("{}", f.name());
        }
        return Ok(());
    }
    if files.len() > 1 && opts.mode == Mode::Replace {
        return Err(Failure::Input(format!("{} files: replace loads one file; load many with --mode append", files.len())).into());
    }
    let target = ctx.target()?;
    tracing::info!("loading into {} (from {})", connect::redact(&target.url), target.origin.describe());
    let (done, failed) = if files.is_empty() {
        load_all(&datasets, data_dir, &opts, explicit_mode, target, quiet, args.jobs as usize)
    } else {
        load_many(datasets[0], &files, &opts, target, args.jobs as usize)
    };
    finish(args, &done, failed)
}

/// The loads' summary on stdout, the failures as the command's error.
fn finish(args: &LoadArgs, done: &[crate::stats::LoadStats], failed: Vec<anyhow::Error>) -> Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(done)?);
    } else if !done.is_empty() {
        println!("{}", summary::table(done));
    }
    report_failures(failed)
}

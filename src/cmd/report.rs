//! `tier report`: every saved query into reports/ (`jobs::report`), and again on every
//! change with --watch (`jobs::watch`).

use anyhow::Result;

use crate::cli::ReportArgs;
use crate::context::Context as Resolved;
use crate::jobs::report::*;
use crate::render::report::Format;

pub fn run(args: &ReportArgs, ctx: &Resolved) -> Result<()> {
    let context = Context {
        datasets: &ctx.catalog()?.datasets,
        data_dir: &ctx.data_dir,
        target: ctx.target()?,
        schema: &ctx.schema,
        quiet: ctx.quiet,
    };
    let formats: Vec<Format> = args.format.iter().map(|&f| f.into()).collect();
    if args.watch {
        return crate::jobs::watch::run(&args.queries, &args.out, &formats, &context);
    }
    let written = write_report(&args.queries, &args.out, &formats, &context, None)?;
    println!("{}", written[0].display());
    Ok(())
}

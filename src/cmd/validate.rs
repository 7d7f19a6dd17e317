//! `tier validate`: the files against what PostgreSQL holds (`jobs::validation`).

use anyhow::Result;

use crate::cli::{CheckFormat, ValidateArgs};
use crate::context::Context;
use crate::jobs::validation::*;

/// Checks every table (or the one named); differences are an error with exit code 1.
pub fn run(args: &ValidateArgs, ctx: &Context) -> Result<()> {
    let (catalog, data_dir, quiet) = (ctx.catalog()?, ctx.data_dir.as_path(), ctx.quiet);
    let datasets = match &args.table {
        Some(name) => vec![catalog.get(name)?],
        None => catalog.datasets.clone(),
    };
    let checks = match args.from.is_empty() {
        true => validate_all(&datasets, data_dir, ctx.target()?, &ctx.schema, quiet, args.reread)?,
        false => match args.from.iter().find(|f| crate::source::kafka::is_url(f)) {
            // A topic: each batch of the ledger read again, and its offsets checked.
            Some(url) => {
                let url = crate::source::kafka::TopicUrl::parse(url)?;
                let (inputs, mut checks) = crate::jobs::stream::validation_inputs(datasets[0], &url, ctx.target()?, &ctx.schema)?;
                let work = inputs.into_iter().map(|input| (datasets[0], input)).collect();
                checks.extend(validate_work(work, ctx.target()?, &ctx.schema, quiet, true)?);
                checks
            }
            None => {
                let work = crate::jobs::load::expand_inputs(&args.from)?.into_iter().map(|input| (datasets[0], input)).collect();
                validate_work(work, ctx.target()?, &ctx.schema, quiet, args.reread)?
            }
        },
    };
    if args.format == CheckFormat::Json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        println!("{}", crate::render::checks::table(&checks));
    }
    verdict(&checks)
}

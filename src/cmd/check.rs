//! `tier check`: the contracts' declared checks over what the tables hold (`pg::checks`).

use anyhow::Result;

use crate::checks::Outcome;
use crate::cli::{CheckArgs, DeclaredCheckFormat};
use crate::context::Context;
use crate::error::Failure;
use crate::pg::{checks, connect};

/// Every check of every dataset (or the one named), kept in the history; a failure (or,
/// `--strict`, a warning) is exit code 1.
pub fn run(args: &CheckArgs, ctx: &Context) -> Result<()> {
    let catalog = ctx.catalog()?;
    let datasets = match &args.table {
        Some(name) => vec![catalog.get(name)?],
        None => catalog.datasets.iter().copied().filter(|d| !d.checks.is_empty()).collect(),
    };
    let mut client = connect::connect(ctx.target()?, 3)?;
    let mut all = Vec::new();
    for ds in datasets {
        if ds.checks.is_empty() {
            tracing::warn!("{}: no checks declared in {} ([[check]])", ds.name, ds.source);
            continue;
        }
        let evaluations = checks::evaluate(&mut client, ds, &ctx.schema)?;
        checks::record(&mut client, &ctx.schema, &evaluations, None)?;
        all.extend(evaluations);
    }
    match args.format {
        DeclaredCheckFormat::Json => println!("{}", serde_json::to_string_pretty(&all)?),
        DeclaredCheckFormat::Table => println!("{}", crate::render::checks::evaluations(&all)),
        DeclaredCheckFormat::Junit => print!("{}", crate::render::checks::junit(&all)),
    }
    let worst = all.iter().map(|e| e.outcome).max().unwrap_or(Outcome::Pass);
    let count = |o: Outcome| all.iter().filter(|e| e.outcome == o).count();
    match worst {
        Outcome::Fail => {
            Err(Failure::Differences(format!("{} checks failed, {} warned", count(Outcome::Fail), count(Outcome::Warn))).into())
        }
        Outcome::Warn if args.strict => Err(Failure::Differences(format!("{} checks warned (--strict)", count(Outcome::Warn))).into()),
        _ => Ok(()),
    }
}

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
    // A dataset's checks, a split log's tables' too; or one table of a log by its name.
    let datasets: Vec<_> = match &args.table {
        Some(name) => match catalog.datasets.iter().flat_map(|d| d.tables()).find(|t| t.name == *name && t.log.is_some()) {
            Some(table) => vec![table],
            None => {
                let ds = catalog.get(name)?;
                if ds.checked().is_empty() {
                    tracing::warn!("{}: no checks declared in {} ([[check]])", ds.name, ds.source);
                }
                ds.checked()
            }
        },
        None => catalog.datasets.iter().flat_map(|d| d.checked()).collect(),
    };
    let mut client = connect::connect(ctx.target()?, 3)?;
    let mut all = Vec::new();
    for ds in datasets {
        if ds.checks.is_empty() {
            tracing::warn!("{}: no checks declared in {} ([[check]])", ds.name, ds.source);
            continue;
        }
        if (args.since.is_some() || args.until.is_some()) && ds.day_field.is_none() && ds.split.is_none() {
            return Err(Failure::Input(format!("{}: --since / --until need the contract's `day` column", ds.name)).into());
        }
        let load = match args.latest_load {
            true => match crate::pg::ledger::latest_load(&mut client, &ctx.schema, ds.ledger_name())? {
                Some(id) => Some(id),
                None => return Err(Failure::Input(format!("{}: no load in the ledger (--latest-load)", ds.name)).into()),
            },
            false => None,
        };
        let scope = checks::Scope { since: args.since.clone(), until: args.until.clone(), load };
        let mut evaluations = checks::evaluate(&mut client, ds, &ctx.schema, &scope)?;
        // A whole-table value of some rows only is named by its scope, and is no part of
        // the whole table's history (what anomaly checks compare with).
        if let Some(label) = scope.label() {
            for e in evaluations.iter_mut().filter(|e| e.group.is_none()) {
                e.group = Some(label.clone());
            }
        }
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

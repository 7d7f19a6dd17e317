//! `tier datasets`: the declared datasets and their columns; `tier datasets check`.

use anyhow::Result;

use crate::cli::{DatasetsAction, DatasetsArgs};
use crate::context::Context;
use crate::contract;
use crate::error::Failure;

pub fn run(args: &DatasetsArgs, ctx: &Context) -> Result<()> {
    let (dir, explicit) = (ctx.datasets_dir.as_path(), ctx.datasets_explicit);
    let checked = contract::check_dir(dir, explicit)?;
    match args.action {
        Some(DatasetsAction::Check) => {
            let mut errors = 0;
            for (file, result) in &checked.files {
                match result {
                    Ok(ds) => match &ds.split {
                        Some(split) => {
                            let tables: Vec<&str> = split.tables.iter().map(|t| t.name.as_str()).collect();
                            let n = tables.len();
                            println!("{file}: ok ({}, split by {} into {n} tables: {})", ds.name, split.by.display(), tables.join(", "))
                        }
                        None if ds.children.is_empty() => println!("{file}: ok ({}, {} columns)", ds.name, ds.fields.len()),
                        None => {
                            let children: Vec<&str> = ds.tables_here().iter().skip(1).map(|t| t.name.as_str()).collect();
                            println!("{file}: ok ({}, {} columns; child tables {})", ds.name, ds.fields.len(), children.join(", "))
                        }
                    },
                    Err(list) => {
                        errors += list.len();
                        for e in list {
                            println!("{e}");
                        }
                    }
                }
            }
            if errors > 0 {
                return Err(Failure::Input(format!("{errors} mistake(s) in the contracts in {}", checked.origin)).into());
            }
            eprintln!("{} contract(s) in {}: all valid", checked.files.len(), checked.origin);
            Ok(())
        }
        None => {
            let catalog = contract::load(dir, explicit, None)?;
            eprintln!("datasets from {}", catalog.origin);
            for ds in &catalog.datasets {
                println!("{}", crate::render::table::dataset(ds));
            }
            Ok(())
        }
    }
}

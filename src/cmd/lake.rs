//! `tier lake`: the Iceberg lake's snapshots, expiry, unused files and compaction, table by
//! table.

use anyhow::Result;

use crate::cli::LakeAction;
use crate::context::Context;
use crate::error::Failure;
use crate::lake::maintenance;
use crate::pg::lake_catalog;

pub fn run(action: &LakeAction, ctx: &Context) -> Result<()> {
    let mut client = crate::pg::connect::connect(ctx.target()?, 3)?;
    let catalog = action.tables().catalog.name.as_str();
    let tables = match action.tables().table.as_deref() {
        Some(t) => vec![t.to_string()],
        None => lake_catalog::tables(&mut client, &ctx.schema, catalog)?,
    };
    if tables.is_empty() {
        return Err(Failure::Input(format!("no lake tables in schema {} (load with --lake DIR --lake-format iceberg)", ctx.schema)).into());
    }
    let mut shown = Vec::new();
    let mut differing = 0;
    for table in &tables {
        match action {
            LakeAction::Show { json, .. } => {
                let (at, snapshots) = lake_catalog::in_transaction(&mut client, &ctx.schema, catalog, table, maintenance::snapshots)?;
                match json {
                    true => shown.push(serde_json::json!({"table": table, "metadata": at, "snapshots": snapshots})),
                    false => println!("{}", crate::render::snapshots::table(table, &snapshots)),
                }
            }
            LakeAction::Expire { older_than, retain_last, .. } => {
                let before = chrono::Utc::now().timestamp_millis() - older_than.as_millis() as i64;
                let gone = lake_catalog::in_transaction(&mut client, &ctx.schema, catalog, table, |row| {
                    maintenance::expire(row, before, *retain_last)
                })?;
                eprintln!("{table}: {} snapshot(s) expired", gone.len());
                for id in gone {
                    println!("{table}\t{id}");
                }
            }
            LakeAction::Check { json, .. } => {
                let days = lake_catalog::in_transaction(&mut client, &ctx.schema, catalog, table, maintenance::check)?;
                differing += days.iter().filter(|d| !d.agrees()).count();
                match json {
                    true => shown.push(serde_json::json!({"table": table, "days": days})),
                    false => println!("{}", crate::render::snapshots::days(table, &days)),
                }
            }
            LakeAction::Compact { .. } => {
                let done = lake_catalog::in_transaction(&mut client, &ctx.schema, catalog, table, maintenance::compact)?;
                eprintln!("{table}: {} partition(s) compacted, {} file(s) into {}", done.partitions, done.files_before, done.files_after);
            }
            LakeAction::Gc { grace, dry_run, .. } => {
                let gone =
                    lake_catalog::in_transaction(&mut client, &ctx.schema, catalog, table, |row| maintenance::gc(row, *grace, *dry_run))?;
                let verb = if *dry_run { "would delete" } else { "deleted" };
                eprintln!("{table}: {verb} {} file(s) no snapshot uses", gone.len());
                for file in gone {
                    println!("{file}");
                }
            }
        }
    }
    if !shown.is_empty() {
        println!("{}", serde_json::to_string_pretty(&shown)?);
    }
    if differing > 0 {
        return Err(Failure::Differences(format!("{differing} day(s) of the lake differ from the database tables")).into());
    }
    Ok(())
}

use std::path::Path;

use anyhow::Result;

use crate::cli::{CheckFormat, ValidateArgs};
use crate::dataset::{self, Dataset};
use crate::error::Failure;
use crate::pg::{self, connect};
use crate::pipeline::checksum_file;
use crate::progress::FileBar;
use crate::validate::{compare, read_database, read_source, Check};

/// Checks every table (or the one named); differences are an error with exit code 1.
pub fn run(args: &ValidateArgs, data_dir: &Path, quiet: bool) -> Result<()> {
    let checks = validate_all(args.table.as_deref(), data_dir, args.conn.database_url.as_deref(), &args.conn.schema, quiet)?;
    if args.format == CheckFormat::Json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        println!("{}", crate::render::checks::table(&checks));
    }
    verdict(&checks)
}

pub fn validate_all(table: Option<&str>, data_dir: &Path, database_url: Option<&str>, schema: &str, quiet: bool) -> Result<Vec<Check>> {
    let datasets: Vec<&'static Dataset> = match table {
        Some(name) => vec![Dataset::by_name(name).expect("clap only accepts declared tables")],
        None => dataset::ALL.to_vec(),
    };
    let target = pg::reach(database_url, data_dir)?;
    let mut checks = Vec::new();
    for ds in datasets {
        let path = data_dir.join(ds.file_name());
        if !path.exists() {
            return Err(Failure::Input(format!("{}: no such file", path.display())).into());
        }
        // The checksum picks the ledger entry, which decides what the database side reads;
        // with it known, both sides are read at once (the file here, PostgreSQL there).
        let checksum = checksum_file(&path)?;
        let mut client = connect::connect(&target, 3)?;
        let schema_owned = schema.to_string();
        let database = std::thread::spawn(move || read_database(ds, &mut client, &schema_owned, &checksum));
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let bar = FileBar::new(ds.name, size, quiet);
        let source = read_source(ds, &path, &bar);
        bar.finish();
        let database = database.join().map_err(|_| anyhow::anyhow!("the database reader panicked"))??;
        checks.extend(compare(ds, &source?, &database));
    }
    Ok(checks)
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

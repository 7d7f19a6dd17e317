use anyhow::Result;

use crate::cli::GenArgs;
use crate::gen::{generate, GenOptions, MANIFEST};

pub fn run(args: &GenArgs, data_dir: &std::path::Path) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(|| data_dir.to_path_buf());
    let opts = GenOptions { events: args.events, weather: args.weather, seed: args.seed, defect_share: args.defect_share };
    let manifest = generate(&opts, &out)?;
    for (table, planted) in &manifest {
        eprintln!(
            "wrote {}: {} records ({} to load, {} to reject)",
            out.join(format!("{table}.json")).display(),
            planted.records,
            planted.loaded,
            planted.rejected.values().sum::<u64>()
        );
    }
    eprintln!("planted defects are listed in {}", out.join(MANIFEST).display());
    Ok(())
}

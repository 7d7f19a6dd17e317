use anyhow::Result;

use crate::cli::GenArgs;
use crate::context::Context;
use crate::gen::{generate, GenOptions, MANIFEST};

/// The two original exports, or (`--dataset`) sample data for any declared contract.
pub fn run(args: &GenArgs, ctx: &Context) -> Result<()> {
    if args.dataset.is_some() {
        return run_dataset(args, ctx);
    }
    let out = args.out.clone().unwrap_or_else(|| ctx.data_dir.clone());
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

/// `gen --dataset NAME`: sample data for any declared dataset, and its manifest entry.
fn run_dataset(args: &GenArgs, ctx: &Context) -> Result<()> {
    let ds = ctx.catalog()?.get(args.dataset.as_deref().expect("checked above"))?;
    let out = args.out.clone().unwrap_or_else(|| ctx.data_dir.clone());
    let path = crate::sample::target(ds, &out);
    let planted = crate::sample::generate(ds, args.records, args.seed, args.defect_share, &path)?;
    let manifest_path = out.join(MANIFEST);
    let mut manifest: std::collections::BTreeMap<String, crate::gen::Planted> =
        std::fs::read(&manifest_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    eprintln!(
        "wrote {}: {} records ({} to load, {} to reject)",
        path.display(),
        planted.records,
        planted.loaded,
        planted.rejected.values().sum::<u64>()
    );
    manifest.insert(ds.name.clone(), planted);
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&manifest)?)
        .map_err(|e| crate::error::Failure::Input(format!("{}: cannot write: {e}", manifest_path.display())))?;
    eprintln!("planted defects are listed in {}", manifest_path.display());
    Ok(())
}

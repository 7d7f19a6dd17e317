use anyhow::Result;

use crate::cli::DemoArgs;
use crate::context::Context;
use crate::gen::{generate, GenOptions, ORIGINALS};
use crate::pg::connect;
use crate::pg::load::Mode;
use crate::pipeline::LoadOptions;
use crate::render::summary;

/// Sample data when DATA_DIR has no exports, a database when none is configured, then
/// the load of both tables.
pub fn run(args: &DemoArgs, ctx: &Context) -> Result<()> {
    let (catalog, data_dir, quiet) = (ctx.catalog()?, ctx.data_dir.as_path(), ctx.quiet);
    let datasets = &catalog.datasets;
    let missing: Vec<&&'static crate::dataset::Dataset> =
        datasets.iter().filter(|d| crate::jobs::load::inputs(d, data_dir).is_err()).collect();
    // The original generator writes both original exports: only when neither is there.
    let original = |d: &crate::dataset::Dataset| ORIGINALS.contains(&d.name.as_str());
    let declared_originals = datasets.iter().filter(|d| original(d)).count();
    if declared_originals > 0 && missing.iter().filter(|d| original(d)).count() == declared_originals {
        eprintln!("no exports in {}: generating sample data (tier gen)", data_dir.display());
        generate(&GenOptions { events: args.events, weather: args.weather, seed: 42, defect_share: 0.02 }, data_dir)?;
    }
    for ds in missing.iter().filter(|d| !original(d)) {
        let path = crate::sample::target(ds, data_dir);
        eprintln!("no export for {} in {}: generating sample data (tier gen --dataset {})", ds.name, data_dir.display(), ds.name);
        crate::sample::generate(ds, args.events / 10, 42, 0.02, &path)?;
    }
    // Found once, for the load, the validation and the report.
    let target = ctx.target()?;
    eprintln!("loading into {} ({})", connect::redact(&target.url), target.origin.describe());
    let opts = LoadOptions {
        schema: args.conn.schema.clone(),
        mode: Mode::Replace,
        force: false,
        allow_empty: false,
        max_reject_ratio: 0.5,
        lake: None,
        lake_format: crate::lake::Format::Hive,
        lake_catalog: crate::pg::lake_catalog::DEFAULT_CATALOG.to_string(),
    };
    let (done, failed) = crate::jobs::load::load_all(datasets, data_dir, &opts, None, target, quiet, 2);
    if !done.is_empty() {
        println!("{}", summary::table(&done));
    }
    crate::jobs::load::report_failures(failed)?;
    eprintln!("validating: source files against PostgreSQL");
    let checks = crate::jobs::validation::validate_all(datasets, data_dir, target, &opts.schema, quiet, false)?;
    println!("{}", crate::render::checks::table(&checks));
    let verdict = crate::jobs::validation::verdict(&checks);
    let context = crate::jobs::report::Context { datasets, data_dir, target, schema: &opts.schema, quiet };
    let all = crate::render::report::Format::ALL;
    let written = crate::jobs::report::write_report(&args.queries, &args.out, &all, &context, Some(checks))?;
    let others: Vec<String> = written[1..].iter().map(|p| p.display().to_string()).collect();
    eprintln!(
        "done: tables {} in schema {} (rejects in <table>_rejects, history in tier_loads)\nreport: {} (and {})",
        catalog.names().join(", "),
        opts.schema,
        written[0].display(),
        others.join(", ")
    );
    verdict
}

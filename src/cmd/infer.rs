//! `tier infer FILE...`: a contract for exports nobody has described yet.

use std::path::Path;

use anyhow::Result;

use crate::cli::InferArgs;
use crate::context::Context;
use crate::error::Failure;
use crate::infer;

pub fn run(args: &InferArgs, ctx: &Context) -> Result<()> {
    let (datasets_dir, data_dir) = (ctx.datasets_dir.as_path(), ctx.data_dir.as_path());
    let files = crate::jobs::load::expand(&args.files)?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => {
            let first = files[0].file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let stem = first.split('.').next().unwrap_or_default().to_string();
            stem.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
        }
    };
    if let Some(by) = &args.split_by {
        return split(args, ctx, &files, &name, by);
    }
    let profile = infer::profile(&files, args.max_depth)?;
    if profile.records == 0 {
        return Err(Failure::Input(format!("{}: no records to infer a contract from", args.files.join(", "))).into());
    }
    // The input as the contract's `file`, which loads read under --data-dir: relative to it
    // when the input is there, else absolute. (Several arguments: the first file.)
    let spec = if args.files.len() == 1 { args.files[0].clone() } else { files[0].display().to_string() };
    let file = contract_file(&spec, data_dir);
    let text = infer::contract(&profile, &name, &file, args.max_columns);
    // What comes out must read back as a contract (the same reader as every command).
    crate::contract::parse(&text, "(inferred)").map_err(|e| Failure::Input(format!("the inferred contract does not read back: {e}")))?;
    if args.write {
        std::fs::create_dir_all(datasets_dir).map_err(|e| Failure::Input(format!("{}: cannot create: {e}", datasets_dir.display())))?;
        let path = datasets_dir.join(format!("{name}.toml"));
        let mut f =
            std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| {
                Failure::Input(format!("{}: cannot write ({e}); an existing contract is never overwritten", path.display()))
            })?;
        std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| Failure::Input(format!("{}: cannot write: {e}", path.display())))?;
        eprintln!("wrote {} ({} records, {} columns)", path.display(), profile.records, profile.columns.len());
    } else {
        print!("{text}");
    }
    Ok(())
}

/// `infer --split-by`: the log's file and one file per kind, checked as one contract.
fn split(args: &InferArgs, ctx: &Context, files: &[std::path::PathBuf], name: &str, by: &str) -> Result<()> {
    let inputs: Vec<crate::source::Input> = files.iter().map(|p| crate::source::Input::File(p.clone())).collect();
    let router = |prefix: &str| -> &'static crate::dataset::Dataset {
        Box::leak(Box::new(crate::dataset::Dataset::router(crate::dataset::Key::parse(by), prefix)))
    };
    let mut profile = infer::split::profile(&inputs, router(""), args.max_depth)?;
    // The export's key prefix is known once its keys are read. Records that spell the kind's
    // key the other way (bare, or with the prefix) are of their kind, as a load reads them:
    // read again knowing it.
    let prefix = profile.key_prefix();
    if !prefix.is_empty() && profile.unrouted.records > 0 {
        profile = infer::split::profile(&inputs, router(&prefix), args.max_depth)?;
    }
    if profile.records == 0 {
        return Err(Failure::Input(format!("{}: no records to infer a contract from", args.files.join(", "))).into());
    }
    if profile.kinds.is_empty() {
        return Err(Failure::Input(format!("{}: no record has a text at {by} to split by", args.files.join(", "))).into());
    }
    let spec = if args.files.len() == 1 { args.files[0].clone() } else { files[0].display().to_string() };
    let file = contract_file(&spec, ctx.data_dir.as_path());
    let written = infer::split::contract(&profile, name, &file, by, args.max_columns);
    let dir = ctx.datasets_dir.join(name);
    let kinds: Vec<(String, String, String)> = written
        .kinds
        .iter()
        .map(|(stem, text)| (dir.join(format!("{stem}.toml")).display().to_string(), stem.clone(), text.clone()))
        .collect();
    crate::contract::parse_log(&written.log, "(inferred)", &kinds).map_err(|e| {
        let list: Vec<String> = e.iter().map(ToString::to_string).collect();
        Failure::Input(format!("the inferred contract does not read back:\n{}", list.join("\n")))
    })?;
    let log_path = ctx.datasets_dir.join(format!("{name}.toml"));
    if !args.write {
        println!("# == {} ==\n{}", log_path.display(), written.log);
        for (path, _, text) in &kinds {
            println!("# == {path} ==\n{text}");
        }
        return Ok(());
    }
    if dir.exists() {
        return Err(Failure::Input(format!("{}: exists; an existing contract is never overwritten", dir.display())).into());
    }
    std::fs::create_dir_all(&dir).map_err(|e| Failure::Input(format!("{}: cannot create: {e}", dir.display())))?;
    create_new(&log_path, &written.log)?;
    for (path, _, text) in &kinds {
        create_new(std::path::Path::new(path), text)?;
    }
    eprintln!(
        "wrote {} and {} files in {} ({} records: {} kinds, {} of no kind)",
        log_path.display(),
        kinds.len(),
        dir.display(),
        profile.records,
        profile.kinds.len(),
        profile.unrouted.records
    );
    Ok(())
}

/// Writes a new file; never over an existing one.
fn create_new(path: &std::path::Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Failure::Input(format!("{}: cannot write ({e}); an existing contract is never overwritten", path.display())))?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| Failure::Input(format!("{}: cannot write: {e}", path.display())))?;
    Ok(())
}

/// An input path as a contract's `file`: relative to the data directory when under it.
fn contract_file(spec: &str, data_dir: &Path) -> String {
    let (Ok(input), Ok(data)) = (std::path::absolute(spec), std::path::absolute(data_dir)) else { return spec.to_string() };
    match input.strip_prefix(&data) {
        Ok(rest) if !rest.as_os_str().is_empty() => rest.display().to_string(),
        _ => input.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_file_is_relative_to_the_data_directory_when_under_it() {
        let data = std::path::Path::new("data");
        assert_eq!(super::contract_file("data/events/*.ndjson.gz", data), "events/*.ndjson.gz");
        assert_eq!(super::contract_file("./data/x.json", data), "x.json");
        assert_eq!(super::contract_file("/srv/exports/x.json", data), "/srv/exports/x.json");
        let elsewhere = super::contract_file("exports/x.json", data);
        assert!(elsewhere.starts_with('/') && elsewhere.ends_with("exports/x.json"), "{elsewhere}");
    }
}

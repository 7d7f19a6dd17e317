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
    let profile = infer::profile(&files)?;
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

//! One file per command: each takes its parsed arguments and returns a result; `main`
//! turns that into an exit code.

pub mod check;
pub mod completions;
pub mod datasets;
pub mod db;
pub mod demo;
pub mod gen;
pub mod infer;
pub mod lake;
pub mod load;
pub mod man;
pub mod query;
pub mod report;
pub mod validate;

/// Where the contracts are, before clap runs (their names are its possible values):
/// `--datasets DIR` or `--datasets=DIR` on the command line, else `TIER_DATASETS`, else
/// `datasets/`. The flag says whether the directory was asked for.
pub fn datasets_dir_from_args() -> (std::path::PathBuf, bool) {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    for (i, a) in args.iter().enumerate() {
        let a = a.to_string_lossy();
        if a == "--" {
            break;
        }
        if let Some(v) = a.strip_prefix("--datasets=") {
            return (v.into(), true);
        }
        if a == "--datasets" {
            if let Some(v) = args.get(i + 1) {
                return (v.into(), true);
            }
        }
    }
    match std::env::var_os("TIER_DATASETS").filter(|v| !v.is_empty()) {
        Some(v) => (v.into(), true),
        None => ("datasets".into(), false),
    }
}

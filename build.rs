//! Embeds the contracts in `datasets/` as the built-in examples (used where no contracts
//! directory exists: an installed binary, a container), without the sources naming them.

use std::path::Path;

fn main() {
    // Read when the script runs, not when it was compiled: a target directory shared by two
    // checkouts reuses one compiled script, which then read the other checkout's (possibly
    // deleted) datasets and embedded none.
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("datasets");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect())
        .unwrap_or_default();
    files.sort();
    let mut out = String::from("&[\n");
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().expect("a file name").to_string_lossy().to_string();
        out.push_str(&format!("    ({name:?}, include_str!({:?})),\n", f.display().to_string()));
    }
    out.push(']');
    let target = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("examples.rs");
    std::fs::write(target, out).expect("write examples.rs");
}

//! `tier man`: the man pages, from the command line's own declarations.

use std::path::Path;

use anyhow::Result;

use crate::error::Failure;

pub fn run(out: &Path, datasets: &[String]) -> Result<()> {
    let written =
        crate::cli::man_pages(datasets, out).map_err(|e| Failure::Input(format!("{}: cannot write man pages: {e}", out.display())))?;
    eprintln!("wrote {} man pages in {}", written.len(), out.display());
    Ok(())
}

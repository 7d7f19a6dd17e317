//! `tier completions SHELL`: a completion script from the command line's own declarations.

use anyhow::Result;

pub fn run(shell: clap_complete::Shell, datasets: &[String]) -> Result<()> {
    crate::cli::completions(shell, datasets, &mut std::io::stdout());
    Ok(())
}

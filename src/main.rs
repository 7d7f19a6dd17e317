//! The thin binary: parse the command line, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;

use tier::cli::{Cli, Command};
use tier::{cmd, error, logging};

/// Caps glibc's malloc at two arenas, before any thread starts. With one arena per thread
/// (the pipeline's four and rayon's) glibc kept freed chunk buffers in each, and a load's
/// peak memory grew with the file: 240 MB at 1 M events, 345 MB at 4 M; capped, 253 and
/// 297 MB in the benchmark, at the same speed. (mimalloc was flat too, but at 370-400 MB.)
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; called first thing, on the only thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    cap_malloc_arenas();
    let cli = Cli::parse();
    let _log_guard = logging::init(cli.verbose, cli.quiet, &cli.data_dir);
    let result = match &cli.command {
        Command::Load(args) => cmd::load::run(args, &cli.data_dir, cli.quiet),
        Command::Gen(args) => cmd::gen::run(args, &cli.data_dir),
        Command::Db(args) => cmd::db::run(args.action, &cli.data_dir),
        Command::Validate(args) => cmd::validate::run(args, &cli.data_dir, cli.quiet),
        Command::Query(args) => cmd::query::run(args, &cli.data_dir),
        Command::Report(args) => cmd::report::run(args, &cli.data_dir, cli.quiet),
        Command::Demo(args) => cmd::demo::run(args, &cli.data_dir, cli.quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tier: error: {e:#}");
            error::exit_code(&e)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

//! The thin binary: parse the command line, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;

use tier::cli::{Cli, Command};
use tier::{cmd, error, logging};

fn main() -> ExitCode {
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

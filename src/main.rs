//! The thin binary: parse the command line, run, map the result to an exit code.

use std::process::ExitCode;

use clap::FromArgMatches;

use tier::cli::{Cli, Command};
use tier::context::Context;
use tier::{cmd, contract, error, logging};

/// Gives glibc's malloc one arena, before any thread starts. With one arena per thread
/// (the pipeline's four and rayon's) glibc kept freed chunk buffers in each, and a load's
/// peak memory grew with the file: 240 MB at 1 M events, 345 MB at 4 M; two arenas gave
/// 253 and 297 MB in the benchmark, at the same speed. (mimalloc was flat too, but at
/// 370-400 MB.) One arena, where every thread reuses what any thread freed, took 10-12 MB
/// off the spikes above the steady level: a 16 M-event file peaked at 195-197 MB instead of
/// 205-209 (1 M: 171 instead of 176-178), no slower (41.9 s against 42.4-42.6).
///
/// And a fixed mmap threshold: blocks of 4 MB or more (Polars' larger arrays) are mapped
/// and unmapped on their own. glibc otherwise raises the threshold to the largest block
/// freed, after which such blocks come from the arenas, and a 16 M-event load crept from
/// 200 to 265 MB; fixed, it stayed at 180-230 MB and was no slower (the chunk buffers,
/// the largest blocks, are reused rather than mapped again: `RecordReader::reuse`).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets malloc parameters; called first thing, on the only thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

fn main() -> ExitCode {
    tune_malloc();
    // The contracts' names come first (from their files' names, nothing parsed): they are
    // the command line's possible values. The contracts themselves are parsed by the
    // commands that need them, a named dataset's alone; a broken one is reported there (and
    // by `datasets check`).
    let (datasets_dir, explicit) = cmd::datasets_dir_from_args();
    let names = contract::declared_names(&datasets_dir, explicit);
    let cli = match Cli::from_arg_matches(&Cli::command_with(&names).get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let _log_guard = logging::init(cli.verbose, cli.quiet, &cli.data_dir);
    tier::source::set_max_record_bytes(cli.max_record_bytes);
    let mut ctx = Context::new(cli.data_dir.clone(), cli.quiet, datasets_dir.clone(), explicit);
    let conn = match &cli.command {
        Command::Load(args) => Some(&args.conn),
        Command::Validate(args) => Some(&args.conn),
        Command::Check(args) => Some(&args.conn),
        Command::Query(args) => Some(&args.conn),
        Command::Report(args) => Some(&args.conn),
        Command::Demo(args) => Some(&args.conn),
        Command::Lake(args) => Some(&args.action.tables().conn),
        _ => None,
    };
    if let Some(conn) = conn {
        ctx.database_url = conn.database_url.clone();
        ctx.schema = conn.schema.clone();
    }
    ctx.only = match &cli.command {
        Command::Load(args) => args.table.clone(),
        Command::Validate(args) => args.table.clone(),
        Command::Check(args) => args.table.clone(),
        _ => None,
    };
    let result = match &cli.command {
        Command::Load(args) => cmd::load::run(args, &ctx),
        Command::Datasets(args) => cmd::datasets::run(args, &ctx),
        Command::Infer(args) => cmd::infer::run(args, &ctx),
        Command::Gen(args) => cmd::gen::run(args, &ctx),
        Command::Db(args) => cmd::db::run(args.action, &ctx),
        Command::Lake(args) => cmd::lake::run(&args.action, &ctx),
        Command::Validate(args) => cmd::validate::run(args, &ctx),
        Command::Check(args) => cmd::check::run(args, &ctx),
        Command::Query(args) => cmd::query::run(args, &ctx),
        Command::Report(args) => cmd::report::run(args, &ctx),
        Command::Demo(args) => cmd::demo::run(args, &ctx),
        Command::Completions(args) => cmd::completions::run(args.shell, &names),
        Command::Man(args) => cmd::man::run(&args.out, &names),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tier: error: {e:#}");
            error::exit_code(&e, tier::pg::is_error)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

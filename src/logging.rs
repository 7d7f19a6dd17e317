//! `tracing` to stderr (level from -v / -q / RUST_LOG) and to DATA_DIR/log/tier.log.
//! A log directory that cannot be written is reported and skipped: logging never
//! stops a load.

use std::io::IsTerminal;
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};

pub fn init(verbose: u8, quiet: bool, data_dir: &Path) -> Option<WorkerGuard> {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    // Other crates' warnings, except the Kafka client's: it warns at each retry of a broker
    // it cannot reach (a restart), and tier says so itself if the retries run out. The log
    // file keeps them.
    let others = if quiet { "error" } else { "warn,rskafka=error" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("tier={level},{others}")));
    let stderr =
        fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).with_target(false).with_filter(filter);

    let log_dir = data_dir.join("log");
    let (file_layer, guard, problem) = match std::fs::create_dir_all(&log_dir).and_then(|_| probe(&log_dir)) {
        Ok(()) => {
            let appender = tracing_appender::rolling::never(&log_dir, "tier.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = fmt::layer().with_writer(writer).with_ansi(false).with_filter(EnvFilter::new("tier=info,warn"));
            (Some(layer), Some(guard), None)
        }
        Err(e) => (None, None, Some(e)),
    };
    tracing_subscriber::registry().with(stderr).with(file_layer).init();
    if let Some(e) = problem {
        tracing::warn!("not logging to {}: {e}", log_dir.display());
    }
    guard
}

fn probe(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new().create(true).append(true).open(dir.join("tier.log"))?.flush()
}

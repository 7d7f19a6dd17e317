//! The work commands share, as a library: loading many datasets and files, a topic, a validation run,
//! the report and its watcher. Commands (`cmd/`) parse nothing and call these; none calls
//! another command.

pub mod check_history;
pub mod load;
pub mod report;
pub mod stream;
pub mod validation;
pub mod watch;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Sets the flag on SIGTERM or SIGINT; a second one while it is set ends the process (exit
/// 1: the batch in flight rolls back, as the database does with a connection that closes).
pub fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, stop.clone())?;
        signal_hook::flag::register(signal, stop.clone())?;
    }
    Ok(stop)
}

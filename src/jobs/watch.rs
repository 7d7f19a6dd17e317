//! `tier report --watch`: the report written again whenever a saved query changes (a file
//! watcher, debounced so an editor's save is one change) or a load lands (the ledger's
//! newest entry, polled), so the page can stay open while queries are worked on.

use std::path::Path;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context as _, Result};
use notify_debouncer_mini::notify::RecursiveMode;
use notify_debouncer_mini::{new_debouncer, DebounceEventResult};

use crate::jobs::report::{write_report, Context};
use crate::pg::{self, connect};
use crate::render::report::Format;

/// Quiet time after a file event before the report is written (an editor saves in bursts).
const DEBOUNCE: Duration = Duration::from_millis(300);
/// How often the ledger is asked for new loads.
const LEDGER_POLL: Duration = Duration::from_secs(1);

/// Writes the report of the queries in `queries` into `out` (as `formats`), and again on
/// every change, until interrupted.
pub fn run(queries: &Path, out: &Path, formats: &[Format], context: &Context) -> Result<()> {
    let (events, changes) = channel::<DebounceEventResult>();
    let mut debouncer = new_debouncer(DEBOUNCE, events).context("cannot start the file watcher")?;
    debouncer.watcher().watch(queries, RecursiveMode::NonRecursive).with_context(|| format!("{}: cannot watch", queries.display()))?;
    let target = context.target;
    let mut last_load = newest_load(target, context.schema);
    let mut first = true;
    let mut reason = "started".to_string();
    loop {
        match write_report(queries, out, formats, context, None) {
            Ok(written) => {
                if first {
                    // The page to keep open; updates are announced on stderr.
                    println!("{}", written[0].display());
                    first = false;
                }
                eprintln!("report written ({reason}); watching {} and the loads (Ctrl-C stops)", queries.display());
            }
            // A broken query while editing is the normal case: say so, keep watching.
            Err(e) => eprintln!("tier: report ({reason}): {e:#}"),
        }
        reason = loop {
            match changes.recv_timeout(LEDGER_POLL) {
                Ok(Ok(events)) => {
                    let queries: Vec<&Path> = events.iter().map(|e| e.path.as_path()).filter(|p| is_query(p)).collect();
                    if let Some(p) = queries.first() {
                        break format!("{} changed", p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default());
                    }
                }
                Ok(Err(e)) => tracing::warn!("file watcher: {e}"),
                Err(RecvTimeoutError::Timeout) => {
                    let now = newest_load(target, context.schema);
                    if now != last_load {
                        last_load = now;
                        break "a load landed".to_string();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        };
    }
}

fn is_query(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "sql")
}

/// The ledger's newest entry (id and status), or None when there is none or no database.
fn newest_load(target: &connect::Target, schema: &str) -> Option<(i64, String)> {
    let mut client = connect::connect(target, 1).ok()?;
    pg::ledger::newest_load(&mut client, schema).ok().flatten()
}

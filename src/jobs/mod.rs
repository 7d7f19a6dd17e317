//! The work commands share, as a library: loading many datasets and files, a topic, a validation run,
//! the report and its watcher. Commands (`cmd/`) parse nothing and call these; none calls
//! another command.

pub mod load;
pub mod report;
pub mod stream;
pub mod validation;
pub mod watch;

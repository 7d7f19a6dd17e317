//! Progress bars on stderr, only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::pipeline::Progress;

pub struct FileBar {
    bar: ProgressBar,
}

/// Bars for files read at the same time, one line each.
pub struct FileBars {
    group: MultiProgress,
    quiet: bool,
}

impl FileBars {
    pub fn new(quiet: bool) -> Self {
        FileBars { group: MultiProgress::new(), quiet }
    }

    /// A line for the person watching (stderr; not with --quiet), above any bars.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            self.group.suspend(|| eprintln!("{text}"));
        }
    }

    pub fn add(&self, label: &str, bytes: u64) -> FileBar {
        let FileBar { bar } = FileBar::new(label, bytes, self.quiet);
        FileBar { bar: self.group.add(bar) }
    }
}

impl FileBar {
    pub fn new(label: &str, bytes: u64, quiet: bool) -> Self {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{prefix:>13} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} ETA {eta}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            b
        };
        bar.set_prefix(label.to_string());
        FileBar { bar }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for FileBar {
    fn advance(&self, offset: u64, records: u64) {
        self.bar.set_position(offset);
        let secs = self.bar.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!("{:.0} rows/s", records as f64 / secs));
    }
}

/// One line saying how a long job is doing (a topic's messages per second and lag),
/// redrawn in place on stderr; nothing unless stderr is a terminal.
pub struct StatusLine {
    bar: ProgressBar,
}

impl StatusLine {
    pub fn new(quiet: bool) -> Self {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
            b
        };
        StatusLine { bar }
    }

    pub fn set(&self, text: String) {
        self.bar.set_message(text);
        self.bar.tick();
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

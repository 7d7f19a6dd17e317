//! Rejects spooled to a temporary file while the connection carries the rows' COPY.

use std::io::Write;

use anyhow::Result;

use super::copy::{self, Reject};
use crate::error::Failure;

/// Rejects encoded as binary COPY rows into a temporary file, while the connection is busy
/// with the rows' COPY: memory stays flat however many there are.
pub struct RejectSpool {
    pub(super) file: std::io::BufWriter<std::fs::File>,
    pub(super) load_id: i64,
    pub(super) source_file: String,
    pub(super) rows: u64,
    /// One batch's encoded rejects, on their way into the file.
    pub(super) block: Vec<u8>,
}

impl RejectSpool {
    pub fn push(&mut self, rejects: &[Reject]) -> Result<()> {
        if rejects.is_empty() {
            return Ok(());
        }
        self.block.clear();
        copy::encode_rejects(rejects, self.load_id, &self.source_file, &mut self.block);
        self.file.write_all(&self.block).map_err(|e| Failure::Input(format!("the rejects' temporary file failed: {e}")))?;
        self.rows += rejects.len() as u64;
        Ok(())
    }
}

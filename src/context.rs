//! What every command works with, resolved once in `main` from the command line: the data
//! directory, the contracts (parsed at first need, a named dataset's alone), the database
//! target (found at first need, once: finding it may start a local cluster), the schema and
//! how much to say. Commands take this and their own arguments, nothing else.

use std::cell::OnceCell;
use std::path::PathBuf;

use anyhow::Result;

use crate::contract::{self, Catalog};
use crate::error::Failure;
use crate::pg::connect::Target;

pub struct Context {
    pub data_dir: PathBuf,
    /// Only errors on stderr.
    pub quiet: bool,
    /// The command's `--database-url`, if it takes one and it was given.
    pub database_url: Option<String>,
    /// The schema of the tables and the ledger.
    pub schema: String,
    /// Where the contracts are, whether that was asked for, and the one dataset the command
    /// names (only its contract is parsed).
    pub datasets_dir: PathBuf,
    pub datasets_explicit: bool,
    pub only: Option<String>,
    catalog: OnceCell<Result<Catalog, String>>,
    target: OnceCell<Target>,
}

impl Context {
    pub fn new(data_dir: PathBuf, quiet: bool, datasets_dir: PathBuf, datasets_explicit: bool) -> Context {
        Context {
            data_dir,
            quiet,
            database_url: None,
            schema: "public".into(),
            datasets_dir,
            datasets_explicit,
            only: None,
            catalog: OnceCell::new(),
            target: OnceCell::new(),
        }
    }

    /// The declared datasets (every one, or the one the command names), parsed once.
    pub fn catalog(&self) -> Result<&Catalog> {
        self.catalog
            .get_or_init(|| contract::load(&self.datasets_dir, self.datasets_explicit, self.only.as_deref()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Failure::Input(e.clone()).into())
    }

    /// The database to use, found once (`pg::reach`).
    pub fn target(&self) -> Result<&Target> {
        if let Some(t) = self.target.get() {
            return Ok(t);
        }
        let found = crate::pg::reach(self.database_url.as_deref(), &self.data_dir)?;
        Ok(self.target.get_or_init(|| found))
    }
}

//! The report as a self-contained HTML page (inline CSS and SVG, nothing fetched) and
//! as Markdown, from minijinja templates compiled into the binary.

use anyhow::{Context, Result};
use minijinja::Environment;
use polars::prelude::*;
use serde::Serialize;

use crate::render::table::{type_name, value_text};
use crate::validate::Check;

/// A file the report is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Markdown,
    /// A Jupyter notebook.
    Notebook,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Html, Format::Markdown, Format::Notebook];

    pub fn file_name(self) -> &'static str {
        match self {
            Format::Html => "report.html",
            Format::Markdown => "report.md",
            Format::Notebook => "report.ipynb",
        }
    }
}

#[derive(Serialize)]
pub struct Report {
    pub title: String,
    pub generated_utc: String,
    pub database: String,
    pub schema: String,
    pub version: &'static str,
    pub loads: Section,
    pub datasets: Vec<DatasetSection>,
    pub validation: Validation,
    /// The declared checks, when a contract declares any.
    pub checks: Option<ChecksSection>,
    pub queries: Vec<QuerySection>,
}

/// Every declared check: where it stands, and each one's values over time.
#[derive(Serialize)]
pub struct ChecksSection {
    pub summary: Section,
    pub charts: Vec<CheckChart>,
    pub note: Option<String>,
}

/// One check's values over time with its thresholds, as inline SVG.
#[derive(Serialize)]
pub struct CheckChart {
    pub table: String,
    pub check: String,
    pub measure: String,
    pub svg: String,
}

/// One declared table: its rejects per reason (with the first table whose rejects table it
/// is: a split log's tables and a dataset's child tables share one), and a profile of each
/// column.
#[derive(Serialize)]
pub struct DatasetSection {
    pub name: String,
    pub anchor: String,
    pub source: String,
    /// What the section shows, said in a sentence.
    pub about: String,
    pub rejects: Option<Section>,
    pub profile: Section,
}

/// A table or the reason there is none, and the SQL that computed it.
#[derive(Serialize, Default)]
pub struct Section {
    pub table: Option<TableData>,
    pub error: Option<String>,
    pub sql: Option<String>,
}

#[derive(Serialize)]
pub struct Validation {
    pub ran: bool,
    pub ok: bool,
    pub failed: usize,
    pub checks: Vec<Check>,
    pub reason: Option<String>,
}

#[derive(Serialize)]
pub struct QuerySection {
    pub file: String,
    pub anchor: String,
    pub title: String,
    pub description: String,
    pub sql: String,
    pub table: Option<TableData>,
    pub note: Option<String>,
    pub chart: Option<String>,
    pub error: Option<String>,
}

#[derive(Serialize)]
pub struct TableData {
    pub columns: Vec<ColumnHead>,
    pub rows: Vec<Vec<CellData>>,
}

#[derive(Serialize)]
pub struct ColumnHead {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub numeric: bool,
}

#[derive(Serialize)]
pub struct CellData {
    pub text: String,
    pub numeric: bool,
    pub null: bool,
}

/// The first `limit` rows of a frame as template data, and a note when rows were cut.
pub fn table_data(df: &DataFrame, limit: usize) -> (TableData, Option<String>) {
    let columns = df
        .get_columns()
        .iter()
        .map(|c| ColumnHead { name: c.name().to_string(), type_: type_name(c.dtype()), numeric: c.dtype().is_primitive_numeric() })
        .collect();
    let shown = df.height().min(limit);
    let rows = (0..shown)
        .map(|i| {
            df.get_columns()
                .iter()
                .map(|c| {
                    let v = c.get(i).unwrap_or(AnyValue::Null);
                    CellData { null: v.is_null(), text: value_text(&v), numeric: c.dtype().is_primitive_numeric() }
                })
                .collect()
        })
        .collect();
    let note = (shown < df.height()).then(|| format!("first {shown} of {} rows", df.height()));
    (TableData { columns, rows }, note)
}

pub(super) fn templates() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.add_template("table.html", include_str!("templates/table.html"))?;
    env.add_template("report.html", include_str!("templates/report.html"))?;
    env.add_template("report.md", include_str!("templates/report.md"))?;
    env.add_template("one_table.html", "{% from \"table.html\" import table %}{{ table(t) }}")?;
    Ok(env)
}

/// Renders (html, markdown).
pub fn render(report: &Report) -> Result<(String, String)> {
    let env = templates()?;
    let html = env.get_template("report.html")?.render(report).context("rendering the HTML report")?;
    let md = env.get_template("report.md")?.render(report).context("rendering the Markdown report")?;
    Ok((html, md))
}

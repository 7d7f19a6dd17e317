//! The report as a Jupyter notebook (nbformat 4.5, `report.ipynb`): one markdown cell per
//! section, and each query as a code cell holding its SQL with the output it gave when the
//! report ran (an HTML table and the chart as SVG), so GitHub, VS Code and JupyterLab show
//! it without a kernel, and anyone can re-run a cell with the `jupysql` magic.

use anyhow::Result;
use serde_json::{json, Value};

use crate::render::report::{Report, Section, TableData};

/// Renders the notebook (`report.ipynb`), its tables as the HTML report draws them.
pub fn render_notebook(report: &Report) -> Result<String> {
    let env = super::report::templates()?;
    let one = env.get_template("one_table.html")?;
    let table_html = |t: &TableData| one.render(minijinja::context! { t => t }).unwrap_or_else(|e| format!("<p>{e}</p>"));
    Ok(serde_json::to_string_pretty(&notebook(report, &table_html))?)
}

/// The notebook for a report. `table_html` renders a table as the HTML report does.
pub fn notebook(report: &Report, table_html: &dyn Fn(&TableData) -> String) -> Value {
    let mut cells = Cells::default();
    cells.markdown(
        "intro",
        &format!(
            "# {}\n\nGenerated {} UTC by tier {} from database `{}`, schema `{}`. Every output below was \
             computed when the report ran, so the notebook shows them without a kernel.\n\n\
             **Re-running it.** The query cells are SQL for the [jupysql](https://jupysql.ploomber.io) magic: run the \
             next cell with the database's URL (and password) filled in, then any query cell. Without Jupyter, \
             `tier query queries/<name>.sql` runs one query and `tier report` writes this notebook again.",
            report.title, report.generated_utc, report.version, report.database, report.schema
        ),
    );
    cells.code("connect", &format!("%pip install --quiet jupysql psycopg2-binary\n%load_ext sql\n%sql {}", report.database), vec![]);

    cells.markdown("loads", "## Latest load per table\n\nFrom the `tier_loads` ledger.");
    cells.section("loads-sql", &report.loads, table_html);

    for d in &report.datasets {
        cells.markdown(&format!("{}-md", d.anchor), &format!("## Dataset {}\n\nDeclared in `{}`. {}", d.name, d.source, d.about));
        if let Some(rejects) = &d.rejects {
            cells.section(&format!("{}-rejects", d.anchor), rejects, table_html);
        }
        cells.section(&format!("{}-profile", d.anchor), &d.profile, table_html);
    }

    validation_cells(&mut cells, report);
    if let Some(checks) = &report.checks {
        let note = checks.note.as_deref().map(|n| format!("\n\n{n}")).unwrap_or_default();
        cells.markdown(
            "checks",
            &format!(
                "## Checks\n\nThe contracts' declared checks: where each stands now (the latest evaluation of each day, or of the \
                 whole table), and each one's values over time with its thresholds, from `tier_checks`.{note}"
            ),
        );
        cells.section("checks-summary", &checks.summary, table_html);
        let outputs = checks.charts.iter().map(|c| chart_output(&c.svg, &format!("{}: {}", c.table, c.check))).collect();
        cells.code(
            "checks-history",
            "%%sql\nSELECT dataset, check_name, grp, value, outcome, checked_at FROM tier_checks ORDER BY id",
            outputs,
        );
    }
    for q in &report.queries {
        query_cells(&mut cells, q, table_html);
    }

    json!({
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": { "name": "python3", "display_name": "Python 3", "language": "python" },
            "language_info": { "name": "python" },
            "title": report.title,
        },
        "cells": cells.list,
    })
}

/// The validation's verdict, and its checks as the output of `tier validate`.
fn validation_cells(cells: &mut Cells, report: &Report) {
    let v = &report.validation;
    let verdict = match (v.ran, v.ok) {
        (false, _) => format!("Not run: {}", v.reason.clone().unwrap_or_default()),
        (true, true) => "All checks match.".to_string(),
        (true, false) => format!("**{} checks differ.**", v.failed),
    };
    cells.markdown(
        "validation",
        &format!("## Validation\n\nThe source files compared with what PostgreSQL holds (`tier validate`). {verdict}"),
    );
    if v.ran {
        let rows: String = v
            .checks
            .iter()
            .map(|c| {
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    html_escape(&c.table),
                    html_escape(&c.check),
                    html_escape(&c.expected),
                    html_escape(&c.actual),
                    html_escape(&c.diff),
                    if c.ok { "ok" } else { "DIFF" }
                )
            })
            .collect();
        let html =
            format!("<table><tr><th>table</th><th>check</th><th>expected</th><th>actual</th><th>diff</th><th></th></tr>{rows}</table>");
        cells.code("validation-run", "!tier validate", vec![display(&html, &verdict)]);
    }
}

/// A query's cells: what it is, then its SQL with the result (or error) it gave.
fn query_cells(cells: &mut Cells, q: &crate::render::report::QuerySection, table_html: &dyn Fn(&TableData) -> String) {
    let mut text = format!("## {}\n\n", q.title);
    if !q.description.is_empty() {
        text.push_str(&q.description);
        text.push_str("\n\n");
    }
    text.push_str(&format!("From `{}`.", q.file));
    cells.markdown(&format!("{}-md", q.anchor), &text);
    let source = format!("%%sql\n{}", q.sql);
    // The chart and the table as two outputs: a renderer shows one type of each.
    let outputs = match (&q.error, &q.table) {
        (Some(e), _) => vec![error_output(e)],
        (None, Some(t)) => {
            let mut html = table_html(t);
            if let Some(note) = &q.note {
                html.push_str(&format!("<p>{}</p>", html_escape(note)));
            }
            let mut outputs: Vec<Value> = q.chart.iter().map(|svg| chart_output(svg, &q.title)).collect();
            outputs.push(display(&html, &format!("{} rows", t.rows.len())));
            outputs
        }
        (None, None) => vec![],
    };
    cells.code(&q.anchor, &source, outputs);
}

#[derive(Default)]
struct Cells {
    list: Vec<Value>,
    executed: u64,
}

impl Cells {
    fn markdown(&mut self, id: &str, text: &str) {
        self.list.push(json!({ "id": cell_id(id), "cell_type": "markdown", "metadata": {}, "source": lines(text) }));
    }

    /// A code cell; with outputs it counts as executed.
    fn code(&mut self, id: &str, source: &str, outputs: Vec<Value>) {
        let count = match outputs.is_empty() {
            true => Value::Null,
            false => {
                self.executed += 1;
                json!(self.executed)
            }
        };
        self.list.push(json!({
            "id": cell_id(id),
            "cell_type": "code",
            "execution_count": count,
            "metadata": {},
            "source": lines(source),
            "outputs": outputs,
        }));
    }

    /// A report section computed by SQL: the SQL as the cell, its table (or error) as output.
    fn section(&mut self, id: &str, section: &Section, table_html: &dyn Fn(&TableData) -> String) {
        let outputs = match (&section.error, &section.table) {
            (Some(e), _) => vec![error_output(e)],
            (None, Some(t)) => vec![display(&table_html(t), &format!("{} rows", t.rows.len()))],
            (None, None) => vec![],
        };
        let sql = section.sql.as_deref().unwrap_or("-- computed by tier report");
        self.code(id, &format!("%%sql\n{sql}"), outputs);
    }
}

/// A `display_data` output: HTML, and a plain-text fallback.
fn display(html: &str, plain: &str) -> Value {
    json!({ "output_type": "display_data", "metadata": {}, "data": { "text/html": lines(html), "text/plain": lines(plain) } })
}

/// A chart as a `display_data` output of its own (SVG, with its title as the text).
fn chart_output(svg: &str, title: &str) -> Value {
    json!({ "output_type": "display_data", "metadata": {}, "data": { "image/svg+xml": lines(svg), "text/plain": lines(&format!("[chart: {title}]")) } })
}

fn error_output(message: &str) -> Value {
    json!({ "output_type": "stream", "name": "stderr", "text": lines(message) })
}

/// nbformat's multiline strings: a list of lines, each keeping its newline.
fn lines(text: &str) -> Value {
    Value::Array(text.split_inclusive('\n').map(|l| Value::String(l.to_string())).collect())
}

/// Cell ids: 1-64 of letters, digits, `-` and `_` (nbformat 4.5).
fn cell_id(id: &str) -> String {
    let clean: String = id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).take(64).collect();
    if clean.is_empty() {
        "cell".into()
    } else {
        clean
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

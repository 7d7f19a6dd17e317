//! The report: every saved query's result (and chart), each loaded dataset's rejects and
//! profile, and the validation, as HTML, Markdown and a notebook (`render::report`).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::dataset::Dataset;
use crate::error::Failure;
use crate::pg::connect::text_literal;
use crate::pg::read;
use crate::pg::{self, connect};
use crate::render::chart;
use crate::render::notebook::render_notebook;
use crate::render::report::{render, table_data, DatasetSection, Format, QuerySection, Report, Section, Validation};
use crate::sql;
use crate::validate::Check;

/// Rows of each query shown in the report.
const ROWS_SHOWN: usize = 50;

/// Where the report's figures come from.
pub struct Context<'a> {
    pub datasets: &'a [&'static Dataset],
    pub data_dir: &'a Path,
    pub target: &'a connect::Target,
    pub schema: &'a str,
    pub quiet: bool,
}

/// Runs every query in `queries_dir` and writes the report in each of `formats` into
/// `out_dir` (`report.html`, `report.md`, `report.ipynb`). Returns their paths, in that
/// order. A query that fails is shown with its error in the report, and the command then
/// fails too. `checks` is a validation already run (the demo prints it first); without it
/// the report validates when the source files are at hand.
pub fn write_report(
    queries_dir: &Path,
    out_dir: &Path,
    formats: &[Format],
    context: &Context,
    checks: Option<Vec<Check>>,
) -> Result<Vec<PathBuf>> {
    let Context { data_dir, target, schema, quiet, .. } = *context;
    let mut files: Vec<PathBuf> = std::fs::read_dir(queries_dir)
        .map_err(|e| Failure::Input(format!("{}: cannot list queries: {e}", queries_dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let loads = section(target, schema, pg::ledger::LATEST_LOADS.to_string(), ROWS_SHOWN);
    let loaded = loaded_tables(target, schema);
    // A section per table: a split log's, one per table it splits into. A rejects table
    // shared by several (a split log's, a dataset's and its child tables') is shown once,
    // with the first of them.
    let mut shown: Vec<(String, String)> = Vec::new();
    let datasets = context
        .datasets
        .iter()
        .flat_map(|ds| ds.tables())
        .filter(|ds| loaded.contains(&ds.name))
        .map(|ds| {
            let rejects = ds.rejects_table();
            let first = shown.iter().find(|(r, _)| *r == rejects).map(|(_, t)| t.clone());
            if first.is_none() {
                shown.push((rejects, ds.name.clone()));
            }
            dataset_section(ds, target, schema, first.as_deref())
        })
        .collect();
    let declared = crate::jobs::check_history::checks_section(
        context.datasets,
        target,
        schema,
        loaded.iter().any(|t| t == crate::pg::checks::HISTORY),
    );
    let validation = match checks {
        Some(checks) => validation_of(checks),
        None => validation(context.datasets, data_dir, target, schema, quiet)?,
    };
    let mut failed = Vec::new();
    let mut queries = Vec::new();
    for file in &files {
        let (section, failed_to_run) = query_section(file, target, schema)?;
        if failed_to_run {
            failed.push(file.display().to_string());
        }
        queries.push(section);
    }
    let report = Report {
        title: "tier load report".into(),
        generated_utc: chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        database: connect::redact(&target.url),
        schema: schema.to_string(),
        version: env!("CARGO_PKG_VERSION"),
        loads,
        datasets,
        validation,
        checks: declared,
        queries,
    };
    let written = write_formats(&report, out_dir, formats)?;
    if !failed.is_empty() {
        return Err(Failure::Database(format!(
            "report written to {}, but these queries failed: {}",
            written.first().map(|p| p.display().to_string()).unwrap_or_default(),
            failed.join(", ")
        ))
        .into());
    }
    Ok(written)
}

/// Every table of the schema (a declared dataset without one has nothing to show).
fn loaded_tables(target: &connect::Target, schema: &str) -> Vec<String> {
    let sql = format!("SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = {}", text_literal(schema));
    read::query_frame(target, &sql, true, schema)
        .ok()
        .and_then(|df| df.column("name").ok().and_then(|c| c.str().ok().map(|s| s.into_iter().flatten().map(str::to_string).collect())))
        .unwrap_or_default()
}

/// One saved query's section: its result and chart, or why there is none; and whether it
/// failed when it ran (a query with parameters is not run, and does not fail the report).
fn query_section(file: &Path, target: &connect::Target, schema: &str) -> Result<(QuerySection, bool)> {
    let text = std::fs::read_to_string(file).map_err(|e| Failure::Input(format!("{}: cannot read: {e}", file.display())))?;
    let header = sql::header(&text);
    let stem = file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let mut section = QuerySection {
        file: file.display().to_string(),
        anchor: format!("q-{stem}"),
        title: header.title.clone().unwrap_or_else(|| stem.clone()),
        description: header.description.join(" "),
        sql: text.trim().to_string(),
        table: None,
        note: None,
        chart: None,
        error: None,
    };
    if !sql::placeholders(&text).is_empty() {
        section.error = Some("has :parameters; run it with tier query --param".into());
        return Ok((section, false));
    }
    match read::query_frame(target, &text, true, schema) {
        Ok(df) => {
            let (table, note) = table_data(&df, ROWS_SHOWN);
            section.table = Some(table);
            section.note = note;
            if let Some(spec) = &header.chart {
                match chart::svg(spec, &df) {
                    Ok(svg) => section.chart = Some(svg),
                    Err(e) => tracing::warn!("{}: no chart: {e:#}", file.display()),
                }
            }
        }
        Err(e) => {
            section.error = Some(format!("{e:#}"));
            return Ok((section, true));
        }
    }
    Ok((section, false))
}

/// The report in each of `formats`, each file written whole; returns the files.
fn write_formats(report: &Report, out_dir: &Path, formats: &[Format]) -> Result<Vec<PathBuf>> {
    let (html, md) = render(report)?;
    std::fs::create_dir_all(out_dir).map_err(|e| Failure::Input(format!("{}: cannot create: {e}", out_dir.display())))?;
    let mut written = Vec::new();
    for format in Format::ALL.into_iter().filter(|f| formats.contains(f)) {
        let text = match format {
            Format::Html => html.clone(),
            Format::Markdown => md.clone(),
            Format::Notebook => render_notebook(report)?,
        };
        let path = out_dir.join(format.file_name());
        write_whole(&path, &text)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes a file so that a reader (a browser reloading it, Jupyter) sees the old or the new
/// one, never half of it: a temporary file beside it, renamed over it. The temporary file
/// has a random name and is created exclusively (a fixed name let a planted symlink turn the
/// write into one over any file the user can write).
fn write_whole(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let cannot = |e: &dyn std::fmt::Display| Failure::Input(format!("{}: cannot write: {e}", path.display()));
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tier-report-");
    // As a plain write would: 0666 less the umask (a temporary file is 0600).
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir).map_err(|e| cannot(&e))?;
    tmp.write_all(text.as_bytes()).map_err(|e| cannot(&e))?;
    tmp.persist(path).map_err(|e| cannot(&e.error))?;
    Ok(())
}

/// A section computed by one query: its table (or error), and the SQL for the notebook.
fn section(target: &pg::connect::Target, schema: &str, sql: String, rows: usize) -> Section {
    match read::query_frame(target, &sql, true, schema) {
        Ok(df) => Section { table: Some(table_data(&df, rows).0), error: None, sql: Some(sql) },
        Err(e) => Section { table: None, error: Some(format!("{e:#}")), sql: Some(sql) },
    }
}

/// A table's rejects per reason (unless they were shown with `shown_with`, a table sharing
/// its rejects table) and its column profile, each computed by the server in one query.
fn dataset_section(ds: &Dataset, target: &pg::connect::Target, schema: &str, shown_with: Option<&str>) -> DatasetSection {
    let section = |sql: String| section(target, schema, sql, 200);
    let rejects_table = ds.rejects_table();
    let (s, rejects) = (connect::ident(schema), connect::ident(&rejects_table));
    let lengths = "(for text, min and max are lengths)";
    let about = match shown_with {
        Some(first) => format!("Each column's values as loaded {lengths}; its rejects are with {first}'s, in {rejects_table}."),
        None if rejects_table == format!("{}_rejects", ds.name) => format!("Rejects per reason, and each column's values as loaded {lengths}."),
        None => format!(
            "Rejects per reason of every table whose rejects are in {rejects_table}, and each column's values of this table as loaded {lengths}."
        ),
    };
    DatasetSection {
        name: ds.name.clone(),
        anchor: format!("d-{}", ds.name),
        source: ds.source.clone(),
        about,
        rejects: shown_with
            .is_none()
            .then(|| section(format!("SELECT reason, count(*)::bigint AS rejected FROM {s}.{rejects} GROUP BY reason ORDER BY 2 DESC, 1"))),
        profile: section(profile_sql(ds, schema)),
    }
}

/// Per column: rows, present (not NULL), distinct, min and max (lengths for text), and the
/// most common values where they say something (text, boolean, integers).
fn profile_sql(ds: &Dataset, schema: &str) -> String {
    use crate::dataset::Kind;
    let table = format!("{}.{}", connect::ident(schema), connect::ident(&ds.name));
    let parts: Vec<String> = ds
        .fields
        .iter()
        .map(|f| {
            let c = connect::ident(&f.name);
            let (min, max) = match f.kind {
                Kind::Text => (format!("min(length({c}))::text"), format!("max(length({c}))::text")),
                Kind::Timestamp => (
                    format!("to_char(min({c}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"),
                    format!("to_char(max({c}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"),
                ),
                Kind::Boolean | Kind::Json => ("NULL::text".into(), "NULL::text".into()),
                _ => (format!("min({c})::text"), format!("max({c})::text")),
            };
            // Where the values lie: ten equal-width buckets from min to max, as a sparkline.
            let histogram = match f.kind {
                Kind::Integer | Kind::Bigint | Kind::Double | Kind::Numeric => histogram_sql(&table, &c, &format!("{c}::float8")),
                Kind::Timestamp => histogram_sql(&table, &c, &format!("extract(epoch FROM {c})::float8")),
                Kind::Date => histogram_sql(&table, &c, &format!("({c} - date '1970-01-01')::float8")),
                _ => "NULL::text".into(),
            };
            let top = match f.kind {
                Kind::Text | Kind::Boolean | Kind::Integer | Kind::Bigint => format!(
                    "(SELECT string_agg(v, ', ') FROM (SELECT {c}::text || ' (' || count(*) || ')' AS v FROM {table} WHERE {c} IS NOT NULL                      GROUP BY {c} ORDER BY count(*) DESC, {c}::text LIMIT 5) top)"
                ),
                _ => "NULL::text".into(),
            };
            format!(
                "SELECT {i}::bigint AS position, {name} AS column, {kind} AS type, count(*)::bigint AS rows, count({c})::bigint AS present, \
                 round(100.0 * count({c}) / greatest(count(*), 1), 1)::float8 AS present_pct, count(DISTINCT {c})::bigint AS distinct, \
                 {min} AS min, {max} AS max, {histogram} AS histogram, {top} AS top_values FROM {table}",
                i = ds.fields.iter().position(|g| g.name == f.name).unwrap_or(0),
                name = text_literal(&f.name),
                kind = text_literal(f.kind.name()),
            )
        })
        .collect();
    format!(
        "SELECT \"column\", type, rows, present, present_pct, \"distinct\", min, max, histogram, top_values FROM ({}) p ORDER BY position",
        parts.join("\nUNION ALL\n")
    )
}

/// A column's values in ten equal-width buckets between its min and max, drawn as a line
/// of block characters (`▁▃█▅▂·` ...; `·` an empty bucket), so a skew or a spike reads at a
/// glance in a table. `value` is the column as a float8.
fn histogram_sql(table: &str, column: &str, value: &str) -> String {
    format!(
        "(SELECT string_agg(CASE WHEN n = 0 THEN '·' ELSE substr('▁▂▃▄▅▆▇█', 1 + (7 * n / greatest(top, 1))::int, 1) END, '' ORDER BY b)
          FROM (SELECT g.b, coalesce(h.n, 0) AS n, max(coalesce(h.n, 0)) OVER () AS top
                FROM generate_series(1, 10) g(b)
                LEFT JOIN (SELECT width_bucket(v, lo, hi + greatest((hi - lo) * 1e-9, 1e-9), 10) AS b, count(*) AS n
                           FROM (SELECT {value} AS v FROM {table} WHERE {column} IS NOT NULL) x,
                                (SELECT min({value}) AS lo, max({value}) AS hi FROM {table}) m
                           GROUP BY 1) h ON h.b = g.b) s
          HAVING count(*) FILTER (WHERE n > 0) > 0)"
    )
}

/// Validation when the source files are at hand; otherwise the reason it was not run.
fn validation(datasets: &[&'static Dataset], data_dir: &Path, target: &connect::Target, schema: &str, quiet: bool) -> Result<Validation> {
    let missing: Vec<String> = datasets
        .iter()
        .filter(|d| crate::jobs::load::inputs(d, data_dir).is_err())
        .map(|d| data_dir.join(&d.file).display().to_string())
        .collect();
    if !missing.is_empty() {
        return Ok(Validation {
            ran: false,
            ok: false,
            failed: 0,
            checks: vec![],
            reason: Some(format!("source files not found: {}", missing.join(", "))),
        });
    }
    Ok(validation_of(crate::jobs::validation::validate_all(datasets, data_dir, target, schema, quiet, false)?))
}

fn validation_of(checks: Vec<Check>) -> Validation {
    let failed = checks.iter().filter(|c| !c.ok).count();
    Validation { ran: true, ok: failed == 0, failed, checks, reason: None }
}

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::cli::QueryArgs;
use crate::context::Context;
use crate::error::Failure;
use crate::pg::read;
use crate::pg::{self, connect, quote};
use crate::render::export::{self, Batches};
use crate::render::table;
use crate::sql;

/// A saved query with its placeholders filled, ready to run.
pub struct Prepared {
    pub sql: String,
    pub target: connect::Target,
    /// Range bounds of --partition-on's column, when given and the result is not empty.
    pub bounds: Option<(i64, i64)>,
}

/// Reads a saved query, fills `:name` placeholders with server-quoted literals and has
/// PostgreSQL check it, so a mistake is reported with the file, line and column.
pub fn prepare(path: &Path, params: &[String], ctx: &Context, partition_on: Option<&str>, read_only: bool) -> Result<Prepared> {
    let schema = ctx.schema.as_str();
    let text = std::fs::read_to_string(path).map_err(|e| Failure::Input(format!("{}: cannot read: {e}", path.display())))?;
    let params = sql::parse_params(params).map_err(Failure::Input)?;
    let wanted: std::collections::BTreeSet<String> = sql::placeholders(&text).into_iter().map(|p| p.name).collect();
    let missing: Vec<&String> = wanted.iter().filter(|n| !params.contains_key(*n)).collect();
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|n| format!(":{n}")).collect();
        return Err(Failure::Input(format!("{}: needs --param for {}", path.display(), list.join(", "))).into());
    }
    if let Some(unused) = params.keys().find(|k| !wanted.contains(*k)) {
        return Err(Failure::Input(format!("{}: has no :{unused} placeholder", path.display())).into());
    }
    let target = ctx.target()?.clone();
    let mut client = connect::connect(&target, 3)?;
    connect::exec(&mut client, "cannot set the search path", &format!("SET search_path TO {}, public", connect::ident(schema)))?;
    if read_only {
        // Every statement of a query without --write runs read-only, the bounds of
        // --partition-on included (they run the query's SQL).
        connect::exec(&mut client, "cannot make the session read-only", "SET default_transaction_read_only = on")?;
    }
    let mut literals = std::collections::BTreeMap::new();
    for (name, value) in &params {
        literals.insert(name.clone(), quote::literal(&mut client, value)?);
    }
    // Placed as this server's lexer reads the text, or refused where that is uncertain.
    let found = sql::placeholders_for_server(&text, quote::standard_strings(&mut client)?)
        .map_err(|why| Failure::Input(format!("{}: cannot place its :parameters for certain: {why}", path.display())))?;
    let filled = sql::substitute_at(&text, &found, |name| literals[name].clone());
    if let Err(e) = quote::check(&mut client, &filled) {
        let place = e.position.map(|p| line_col(&filled, p)).map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default();
        return Err(Failure::Database(format!("{}{place}: {}", path.display(), e.message)).into());
    }
    let bounds = match partition_on {
        Some(column) => quote::bounds(&mut client, &filled, column, read_only)?,
        None => None,
    };
    Ok(Prepared { sql: filled, target, bounds })
}

/// The query over the lake (a Hive lake's directory, else the Iceberg lake through its
/// catalog). Parameters become standard SQL string literals (quotes doubled): Polars' SQL
/// has no bound parameters, and nothing here can write.
fn lake_frame(args: &QueryArgs, root: Option<&Path>, ctx: &Context) -> Result<polars::prelude::DataFrame> {
    let text = std::fs::read_to_string(&args.file).map_err(|e| Failure::Input(format!("{}: cannot read: {e}", args.file.display())))?;
    let params = sql::parse_params(&args.param).map_err(Failure::Input)?;
    if let Some(p) = sql::placeholders(&text).into_iter().find(|p| !params.contains_key(&p.name)) {
        return Err(Failure::Input(format!("{}: needs --param for :{}", args.file.display(), p.name)).into());
    }
    let filled = sql::substitute(&text, |name| format!("'{}'", params[name].replace('\'', "''")));
    let frame = match root {
        Some(root) => crate::lake::query(root, &filled),
        None => {
            let mut client = connect::connect(ctx.target()?, 3)?;
            let tables = pg::lake_catalog::tables(&mut client, &ctx.schema, &args.lake_catalog.name)?;
            if tables.is_empty() {
                let why = format!("no lake tables in schema {} (load with --lake DIR --lake-format iceberg)", ctx.schema);
                return Err(Failure::Input(why).into());
            }
            let mut lake = crate::lake::iceberg_read::LakeQuery::new()?;
            for table in &tables {
                pg::lake_catalog::in_transaction(&mut client, &ctx.schema, &args.lake_catalog.name, table, |row| {
                    lake.add(row, args.as_of)
                })?;
            }
            lake.run(&filled)
        }
    };
    frame.map_err(|e| match e.downcast_ref::<Failure>() {
        Some(Failure::Database(_)) => e,
        _ => Failure::Input(format!("{}: {e:#}", args.file.display())).into(),
    })
}

/// 1-based line and column of a 1-based character position.
fn line_col(text: &str, position: usize) -> (usize, usize) {
    let before: String = text.chars().take(position.saturating_sub(1)).collect();
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

pub fn run(args: &QueryArgs, ctx: &Context) -> Result<()> {
    let format = args.format.into();
    let mut df = match &args.lake {
        Some(root) => lake_frame(args, Some(root), ctx)?,
        None if args.iceberg => lake_frame(args, None, ctx)?,
        None => {
            let (prepared, sqls) = prepare_args(args, ctx)?;
            let read_only = !args.write;
            let failed = || format!("{}: query failed", args.file.display());
            if format == export::Format::Csv && sqls.len() == 1 {
                // The server formats CSV itself, streamed through as psql \copy does.
                let mut out = StreamedOutput::create(args.output.as_deref())?;
                pg::export::copy_csv(&prepared.target, &sqls[0], read_only, &args.conn.schema, out.writer()).with_context(failed)?;
                return out.complete();
            }
            if export::streams(format) {
                // Written batch by batch as the rows arrive: never held whole. A file is
                // written beside its final name and renamed once complete, so a query that
                // fails halfway leaves no partial file (and an earlier one untouched).
                let mut out = StreamedOutput::create(args.output.as_deref())?;
                let mut batches = Batches::new(format, out.writer());
                // The server's binary COPY decoded here, one range of a split read after the other.
                for sql in &sqls {
                    pg::frames::copy_frames(&prepared.target, sql, read_only, &args.conn.schema, |batch| batches.write(batch))
                        .with_context(failed)?;
                }
                batches.finish()?;
                return out.complete();
            }
            read::query_frame_split(&prepared.target, &sqls, read_only, &args.conn.schema).with_context(failed)?
        }
    };
    let mut out = open_output(args)?;
    if format == export::Format::Table {
        let (text, note) = table::frame(&df, args.limit);
        writeln!(out, "{text}")?;
        writeln!(out, "({} row{})", df.height(), if df.height() == 1 { "" } else { "s" })?;
        if let Some(note) = note {
            eprintln!("{note}");
        }
    } else {
        export::write(&mut df, format, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// The prepared query and the SQL to run: split into --partitions ranges of
/// --partition-on's column (its bounds are only looked up when there is more than one).
fn prepare_args(args: &QueryArgs, ctx: &Context) -> Result<(Prepared, Vec<String>)> {
    // CSV is the server's own COPY of the whole query, in one statement: ranges, read one
    // after another and each a scan of its own, took 1.5-1.8x as long and more memory.
    let csv = export::Format::from(args.format) == export::Format::Csv;
    if csv && args.partition_on.is_some() && args.partitions > 1 {
        tracing::info!("--partition-on: CSV is read in one COPY, formatted by the server");
    }
    let partition_on = args.partition_on.as_deref().filter(|_| args.partitions > 1 && !csv);
    let prepared = prepare(&args.file, &args.param, ctx, partition_on, !args.write)?;
    let sqls = match (partition_on, prepared.bounds) {
        (Some(column), Some((min, max))) => read::partition_queries(&prepared.sql, column, min, max, args.partitions as usize),
        _ => vec![prepared.sql.clone()],
    };
    Ok((prepared, sqls))
}

/// --output's file, or stdout.
fn open_output(args: &QueryArgs) -> Result<Box<dyn Write>> {
    Ok(match args.output.as_deref() {
        None | Some("-") => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| Failure::Input(format!("{path}: cannot create: {e}")))?,
        )),
    })
}

/// Where a streamed result goes: stdout, or a temporary file renamed to --output's path
/// when complete.
enum StreamedOutput {
    Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>),
    File {
        path: String,
        file: std::io::BufWriter<tempfile::NamedTempFile>,
    },
    /// Not a regular file (a pipe, a device): written as it comes.
    Special(std::io::BufWriter<std::fs::File>),
}

impl StreamedOutput {
    fn create(path: Option<&str>) -> Result<StreamedOutput> {
        Ok(match path {
            None | Some("-") => StreamedOutput::Stdout(std::io::BufWriter::new(std::io::stdout().lock())),
            // A named pipe, a device or a socket is written straight into: replaced by a
            // renamed file, a pipe's reader would get nothing and `/dev/null` would be gone.
            Some(path) if std::fs::metadata(path).is_ok_and(|m| !m.file_type().is_file()) => {
                let file =
                    std::fs::OpenOptions::new().write(true).open(path).map_err(|e| Failure::Input(format!("{path}: cannot open: {e}")))?;
                StreamedOutput::Special(std::io::BufWriter::with_capacity(1 << 20, file))
            }
            Some(path) => {
                let dir = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                let mut builder = tempfile::Builder::new();
                builder.prefix(".tier-query-");
                // As File::create would: 0666 less the umask (a temporary file is 0600).
                #[cfg(unix)]
                builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
                let file = builder.tempfile_in(dir).map_err(|e| Failure::Input(format!("{path}: cannot create: {e}")))?;
                StreamedOutput::File { path: path.to_string(), file: std::io::BufWriter::with_capacity(1 << 20, file) }
            }
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            StreamedOutput::Stdout(w) => w,
            StreamedOutput::File { file, .. } => file,
            StreamedOutput::Special(w) => w,
        }
    }

    fn complete(self) -> Result<()> {
        match self {
            StreamedOutput::Stdout(mut w) => w.flush()?,
            StreamedOutput::Special(mut w) => w.flush()?,
            StreamedOutput::File { path, file } => {
                let file = file.into_inner().map_err(|e| Failure::Input(format!("{path}: cannot write: {}", e.error())))?;
                file.persist(&path).map_err(|e| Failure::Input(format!("{path}: cannot create: {}", e.error)))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn positions_map_to_lines_and_columns() {
        assert_eq!(super::line_col("select\n  nope", 10), (2, 3));
        assert_eq!(super::line_col("x", 1), (1, 1));
    }
}

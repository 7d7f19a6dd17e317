//! SQL -> a Polars DataFrame, through connectorx (the only module that uses it).
//!
//! connectorx streams the result with PostgreSQL's binary COPY and builds Arrow arrays
//! that Polars adopts without copying: one polars, shared with connectorx's `dst_polars`.

use anyhow::Result;
use connectorx::destinations::arrow::ArrowDestination;
use connectorx::prelude::Dispatcher;
use connectorx::sources::postgres::{BinaryProtocol, PostgresSource};
use connectorx::sql::CXQuery;

use crate::pg::connect::Target;
use connectorx::transports::PostgresArrowTransport;
use polars::prelude::DataFrame;

use crate::error::Failure;
use crate::pg::connect::redact;

/// connectorx's binary-protocol reader over the connector `pg::tls` chose (what its
/// `get_arrow` does, minus the TLS modes it cannot verify). A macro, because the two
/// connector types meet connectorx's trait bounds only as concrete types.
macro_rules! dispatch {
    ($config:expr, $tls:expr, $tls_type:ty, $destination:expr, $queries:expr) => {{
        PostgresSource::<BinaryProtocol, $tls_type>::new($config, $tls, $queries.len()).map_err(|e| chain(&e)).and_then(|source| {
            Dispatcher::<_, _, PostgresArrowTransport<BinaryProtocol, $tls_type>>::new(source, $destination, $queries, None)
                .run()
                .map_err(|e| chain(&e))
        })
    }};
}

/// Runs one query with `schema` (a plain identifier, see `cli::schema_name`) first on
/// the search path. With `read_only` the session is read-only, so a saved query that tries
/// to write (a data-modifying CTE, `INSERT ... RETURNING`) fails instead.
pub fn query_frame(target: &Target, sql: &str, read_only: bool, schema: &str) -> Result<DataFrame> {
    query_frame_split(target, &[sql.to_string()], read_only, schema)
}

/// Splits a query into `parts` ranges of an integer column between `min` and `max`, for
/// connectorx to read over that many connections at once (rows come back range by range).
/// Boundaries are computed in 128 bits, so the ends of the 64-bit range split like any
/// other; the first range has no lower bound and takes the NULLs, the last has no upper
/// bound, so every row is in exactly one range and every literal is a valid `bigint`.
pub fn partition_queries(sql: &str, column: &str, min: i64, max: i64, parts: usize) -> Vec<String> {
    let width = max as i128 - min as i128 + 1;
    let parts = (parts.max(1) as i128).min(width.max(1));
    let column = crate::pg::connect::ident(column);
    // Boundary i is where range i starts: min + floor(i * width / parts), within (min, max].
    let boundary = |i: i128| min as i128 + i * width / parts;
    (0..parts)
        .map(|i| {
            let mut conditions = Vec::new();
            if i > 0 {
                conditions.push(format!("{column} >= {}", boundary(i)));
            }
            if i + 1 < parts {
                conditions.push(format!("{column} < {}", boundary(i + 1)));
            }
            let mut filter = conditions.join(" AND ");
            if i == 0 {
                filter = if filter.is_empty() { "TRUE".into() } else { format!("({filter}) OR {column} IS NULL") };
            }
            format!("SELECT * FROM ({sql}) AS tier_part WHERE {filter}")
        })
        .collect()
}

/// connectorx's Postgres settings for `url`: TLS as `pg::tls` decides, and session
/// settings in the connection's options, so that every connection connectorx opens
/// (metadata and data) has them: saved queries name tables without a schema, and
/// read-only makes a saved query that tries to write fail instead.
fn source_config(url: &str, read_only: bool, schema: &str) -> Result<(crate::pg::tls::Settings, postgres::Config)> {
    let tls = crate::pg::tls::settings(url)?;
    let mut config = crate::pg::connect::parse_config(&tls)?;
    // Quoted, as everywhere else: unquoted, `Sales` would fold to `sales`.
    let mut options = format!("-c search_path={},public", crate::pg::connect::ident(schema));
    if read_only {
        options.push_str(" -c default_transaction_read_only=on");
    }
    config.options(&options);
    config.application_name("tier");
    Ok((tls, config))
}

/// Runs several queries whose results stack into one frame, one connection each. A
/// read-only run goes through `pg::frames` instead, in transactions rolled back: connectorx
/// runs each query on its own, committed, and PostgreSQL lets a read-only transaction
/// create large objects.
pub fn query_frame_split(target: &Target, sqls: &[String], read_only: bool, schema: &str) -> Result<DataFrame> {
    if read_only {
        return crate::pg::frames::query_frame(target, sqls, true, schema);
    }
    let url = target.url.as_str();
    let (tls, config) = source_config(url, read_only, schema)?;
    let queries: Vec<CXQuery<String>> = sqls.iter().map(CXQuery::from).collect();
    let mut destination = ArrowDestination::new();
    let run = match tls.connector()? {
        Some(connector) => dispatch!(config, connector, postgres_openssl::MakeTlsConnector, &mut destination, &queries),
        None => dispatch!(config, postgres::NoTls, postgres::NoTls, &mut destination, &queries),
    };
    run.map_err(|e| Failure::Database(clean(&e, url)))?;
    let converted = quietly(|| destination.polars());
    let frame = match converted {
        Ok(r) => r.map_err(|e| Failure::Database(clean(&chain(&e), url)))?,
        Err(_) => return Err(unreadable_type()),
    };
    Ok(utc_naive(frame)?)
}

/// Runs `f`, catching a panic without printing it. The quiet panic hook is process-wide
/// for this moment; no other thread is expected to panic.
fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous_hook);
    result
}

/// connectorx panics (rather than erroring) on a column type this build of Polars lacks,
/// such as `numeric`: an error that says what to do instead.
fn unreadable_type() -> anyhow::Error {
    Failure::Input(
        "the result has a column type tier cannot read (numeric/decimal, arrays, ...): cast it in the \
         query, e.g. sum(x)::bigint, avg(x)::float8, round(x, 2)::float8"
            .into(),
    )
    .into()
}

/// connectorx errors can quote the connection string; never let a password through.
fn clean(message: &str, url: &str) -> String {
    message.replace(url, &redact(url))
}

/// An error and its causes, the way PostgreSQL said it ("db error" alone says nothing).
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = inner.source();
    }
    parts.retain(|p| p != "db error");
    parts.join(": ")
}

/// timestamptz arrives as a UTC-zoned Datetime; tier keeps every instant in UTC and
/// builds Polars without its time-zone database, so the zone tag is dropped (the
/// instant is unchanged).
fn utc_naive(mut df: DataFrame) -> polars::prelude::PolarsResult<DataFrame> {
    use polars::prelude::*;
    let zoned: Vec<(String, TimeUnit)> = df
        .get_columns()
        .iter()
        .filter_map(|c| match c.dtype() {
            DataType::Datetime(tu, Some(_)) => Some((c.name().to_string(), *tu)),
            _ => None,
        })
        .collect();
    for (name, tu) in zoned {
        let physical = df.column(&name)?.datetime()?.physical().clone();
        let naive = physical.into_datetime(tu, None).into_column();
        df.with_column(naive)?;
    }
    Ok(df)
}

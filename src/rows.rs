//! Per-row folds over a frame's declared columns: the duplicate check's digests and
//! validate's PostgreSQL row hashes are both "feed every cell of a row, in column order,
//! into a per-row state". Columnar (one pass per column over a slice of rows) and in
//! parallel over slices, so it uses every core however wide the frame is.

use polars::prelude::*;
use rayon::prelude::*;

use crate::dataset::{Dataset, Kind};

/// One typed cell, as the declared schema casts it (NULL as `None`).
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    Text(Option<&'a str>),
    Int(Option<i32>),
    Float(Option<f64>),
    /// Microseconds since 1970-01-01 UTC.
    Timestamp(Option<i64>),
}

/// Rows per parallel task: large enough to amortise the slicing, small enough to spread.
const SLICE: usize = 16 * 1024;

/// Folds each row's declared cells, in declared order, into a state that starts as `init`.
pub fn fold<S>(ds: &Dataset, df: &DataFrame, init: S, step: impl Fn(&mut S, Cell<'_>) + Sync) -> PolarsResult<Vec<S>>
where
    S: Clone + Send + Sync,
{
    let df = df.select(ds.fields.iter().map(|f| f.name))?;
    let starts: Vec<usize> = (0..df.height()).step_by(SLICE).collect();
    let parts: Vec<PolarsResult<Vec<S>>> = starts
        .into_par_iter()
        .map(|lo| {
            let part = df.slice(lo as i64, SLICE);
            let mut out = vec![init.clone(); part.height()];
            for field in ds.fields {
                let column = part.column(field.name)?.as_materialized_series().rechunk();
                let cells = out.iter_mut();
                match field.kind {
                    Kind::Text => cells.zip(column.str()?).for_each(|(s, v)| step(s, Cell::Text(v))),
                    Kind::Int => cells.zip(column.i32()?).for_each(|(s, v)| step(s, Cell::Int(v))),
                    Kind::Float => cells.zip(column.f64()?).for_each(|(s, v)| step(s, Cell::Float(v))),
                    Kind::Timestamp => cells.zip(column.datetime()?.physical()).for_each(|(s, v)| step(s, Cell::Timestamp(v))),
                }
            }
            Ok(out)
        })
        .collect();
    let mut all = Vec::with_capacity(df.height());
    for part in parts {
        all.extend(part?);
    }
    Ok(all)
}

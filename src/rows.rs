//! Per-row folds over a frame's declared columns: the duplicate check's digests and
//! validate's PostgreSQL row hashes are both "feed every cell of a row, in column order,
//! into a per-row state". Columnar (one pass per column over a slice of rows) and in
//! parallel over slices, so it uses every core however wide the frame is.

use polars::prelude::*;
use rayon::prelude::*;

use crate::dataset::{Field, Kind};

/// One typed cell, as the declared schema casts it (NULL as `None`).
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    Text(Option<&'a str>),
    Integer(Option<i32>),
    Bigint(Option<i64>),
    Double(Option<f64>),
    /// Canonical decimal text (see `values::number::parse_numeric`).
    Numeric(Option<&'a str>),
    Boolean(Option<bool>),
    /// Microseconds since 1970-01-01 UTC.
    Timestamp(Option<i64>),
    /// Days since 1970-01-01.
    Date(Option<i32>),
    /// JSON text.
    Json(Option<&'a str>),
}

/// Rows per parallel task: large enough to amortise the slicing, small enough to spread.
const SLICE: usize = 16 * 1024;

/// Folds each row's cells of `fields` (in that order) into a state that starts as `init`.
pub fn fold<S>(fields: &[&Field], df: &DataFrame, init: S, step: impl Fn(&mut S, Cell<'_>) + Sync) -> PolarsResult<Vec<S>>
where
    S: Clone + Send + Sync,
{
    let df = df.select(fields.iter().map(|f| f.name.as_str()))?;
    let starts: Vec<usize> = (0..df.height()).step_by(SLICE).collect();
    let parts: Vec<PolarsResult<Vec<S>>> = starts
        .into_par_iter()
        .map(|lo| {
            let part = df.slice(lo as i64, SLICE);
            let mut out = vec![init.clone(); part.height()];
            for field in fields {
                let column = part.column(&field.name)?.as_materialized_series();
                let cells = &mut out;
                match field.kind {
                    Kind::Text => each_value(cells, column.str()?, |s, v| step(s, Cell::Text(v))),
                    Kind::Integer => each_value(cells, column.i32()?, |s, v| step(s, Cell::Integer(v))),
                    Kind::Bigint => each_value(cells, column.i64()?, |s, v| step(s, Cell::Bigint(v))),
                    Kind::Double => each_value(cells, column.f64()?, |s, v| step(s, Cell::Double(v))),
                    Kind::Numeric => each_value(cells, column.str()?, |s, v| step(s, Cell::Numeric(v))),
                    Kind::Boolean => each_value(cells, column.bool()?, |s, v| step(s, Cell::Boolean(v))),
                    Kind::Timestamp => each_value(cells, column.datetime()?.physical(), |s, v| step(s, Cell::Timestamp(v))),
                    Kind::Date => each_value(cells, column.date()?.physical(), |s, v| step(s, Cell::Date(v))),
                    Kind::Json => each_value(cells, column.str()?, |s, v| step(s, Cell::Json(v))),
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

/// Hands each value of a column to `f` with its row's state, array by array: a
/// ChunkedArray's own iterator is boxed, a virtual call per cell (4% of a reread's
/// instructions).
fn each_value<'a, T: PolarsDataType, S>(states: &mut [S], column: &'a ChunkedArray<T>, mut f: impl FnMut(&mut S, Option<T::Physical<'a>>)) {
    let mut states = states.iter_mut();
    for array in column.downcast_iter() {
        for (state, value) in (&mut states).zip(array.iter()) {
            f(state, value);
        }
    }
}

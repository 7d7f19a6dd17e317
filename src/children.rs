//! Child tables of one chunk: each parent record's arrays split into elements, parsed and
//! checked as records of the child's own contract, with the parent's key and the element's
//! position set by tier. A child row that fails a rule rejects its parent's record (the
//! detail names the child, the element and the column): a record is loaded whole or not
//! at all.

use polars::prelude::*;

use crate::dataset::{Dataset, Key};
use crate::frame::{COL_DETAIL, COL_ISSUE, COL_REASON, COL_RECORD};
use crate::source::{Chunk, Span};
use crate::transform::{elements::array_elements, parse};

/// One child table's rows of a chunk (every row, checked: the caller keeps those of
/// accepted parents), identified by `COL_RECORD`, the parent record's ordinal.
pub struct ChildRows {
    pub ds: &'static Dataset,
    pub checked: DataFrame,
}

/// Why a parent row fails because of its arrays: reason and detail.
pub type Failure = Option<(String, String)>;

/// The rows of every child table (and theirs, depth first) of the records of `chunk`, whose
/// parsed text frame is `parsed`; and per parent row, the failure of a descendant, if any
/// (none at all without children).
/// (`spans` in `buf`: a chunk's records, or some of them.)
pub fn child_rows(
    parent: &'static Dataset,
    buf: &[u8],
    spans: &[Span],
    offset_end: u64,
    parsed: &DataFrame,
) -> PolarsResult<(Vec<ChildRows>, Vec<Failure>)> {
    // Without children (most datasets) nothing is allocated: no failures is none failing.
    let mut out = Vec::new();
    if parent.children.is_empty() {
        return Ok((out, Vec::new()));
    }
    let mut failures: Vec<Failure> = vec![None; spans.len()];
    let issues = parsed.column(COL_ISSUE)?.str()?.clone();
    for child in &parent.children {
        let name = child_name(parent, child.ds);
        // The elements, as records of their own, and where each came from.
        let mut elements = Chunk { buf: Vec::new(), spans: Vec::new(), offset_end, messages: None };
        let (mut parent_row, mut position): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        for (i, span) in spans.iter().enumerate() {
            if issues.get(i).is_some() || span.damage.is_some() {
                continue;
            }
            match array_elements(&buf[span.start..span.end], &child.array, &parent.prefix, &name) {
                Ok(None) => {}
                Ok(Some(items)) => {
                    for (j, item) in items.into_iter().enumerate() {
                        let start = elements.buf.len();
                        elements.buf.extend_from_slice(&item);
                        elements.spans.push(Span { line: span.line, record: span.record, start, end: elements.buf.len(), damage: None });
                        elements.buf.push(b'\n');
                        parent_row.push(i as u32);
                        position.push(j as u32);
                    }
                }
                Err((reason, detail)) => {
                    failures[i].get_or_insert((reason.to_string(), detail));
                }
            }
        }
        let mut text = parse::parse_chunk(child.ds, &elements)?;
        set_by_tier(child.ds, &mut text, parsed, &parent_row, &position)?;
        let (grandchildren, below) = child_rows(child.ds, &elements.buf, &elements.spans, offset_end, &text)?;
        let checked = crate::quality::check(child.ds, text)?;
        let checked = fail_rows(checked, &below)?;
        // A failing element fails its record.
        let reasons = checked.column(COL_REASON)?.str()?;
        let details = checked.column(COL_DETAIL)?.str()?;
        for (k, reason) in reasons.into_iter().enumerate() {
            if let Some(reason) = reason {
                let detail = format!("{name}[{}]: {}", position[k], details.get(k).unwrap_or_default());
                failures[parent_row[k] as usize].get_or_insert((reason.to_string(), detail));
            }
        }
        out.push(ChildRows { ds: child.ds, checked });
        out.extend(grandchildren);
    }
    Ok((out, failures))
}

/// Per parent row, a digest of its records' child rows (each table's row hashes, which
/// cover the parent's key and the positions): two records whose rows are equal but whose
/// arrays are not are no duplicates of each other. Zero for a record without child rows.
pub fn children_digests(tables: &[&'static Dataset], parent: &DataFrame, children: &[ChildRows]) -> PolarsResult<Vec<u64>> {
    let records = parent.column(COL_RECORD)?.u64()?;
    let row_of: std::collections::HashMap<u64, usize> = records.into_no_null_iter().enumerate().map(|(i, r)| (r, i)).collect();
    let mut digests = vec![0u64; parent.height()];
    for c in children {
        let salt = tables.iter().position(|t| std::ptr::eq(*t, c.ds)).unwrap_or(0) as u64;
        // Without the record's ordinal (which two equal records differ by).
        let fields: Vec<&crate::dataset::Field> = c.ds.fields.iter().filter(|f| !f.is_record_id()).collect();
        let hashes =
            crate::rows::fold(&fields, &c.checked, 0u64, |h, cell| *h = crate::hash::combine(*h, crate::figures::cell_hash(cell)))?;
        for (record, hash) in c.checked.column(COL_RECORD)?.u64()?.into_no_null_iter().zip(hashes) {
            if let Some(&row) = row_of.get(&record) {
                let mixed = (hash ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                digests[row] = digests[row].wrapping_add(mixed.rotate_left(31));
            }
        }
    }
    Ok(digests)
}

/// A child's name as its contract gives it (its table is `<parent>_<name>`).
fn child_name(parent: &Dataset, child: &Dataset) -> String {
    child.name.strip_prefix(&format!("{}_", parent.name)).unwrap_or(&child.name).to_string()
}

/// The columns tier sets in a child's text frame: the parent's key (from the parent's text
/// frame, by each element's parent row) and the element's position. (The record's ordinal
/// the parse sets from each element's span.)
fn set_by_tier(child: &Dataset, text: &mut DataFrame, parent: &DataFrame, parent_row: &[u32], position: &[u32]) -> PolarsResult<()> {
    let rows = IdxCa::from_vec("rows".into(), parent_row.iter().map(|&r| r as IdxSize).collect());
    for f in &child.fields {
        let column = match &f.key {
            Key::Parent(c) if c == COL_RECORD => continue,
            Key::Parent(c) => parent.column(c)?.take(&rows)?.with_name(f.name.as_str().into()),
            Key::Position => {
                let values: Vec<String> = position.iter().map(u32::to_string).collect();
                Column::new(f.name.as_str().into(), values)
            }
            _ => continue,
        };
        text.with_column(column)?;
    }
    Ok(())
}

/// `checked` with the rows that `failures` names failed (where no rule failed them first).
/// (`failures` is empty, or one per row.)
pub fn fail_rows(checked: DataFrame, failures: &[Failure]) -> PolarsResult<DataFrame> {
    if failures.iter().all(Option::is_none) {
        return Ok(checked);
    }
    let reasons = checked.column(COL_REASON)?.str()?;
    let details = checked.column(COL_DETAIL)?.str()?;
    let mut new_reasons: Vec<Option<String>> = Vec::with_capacity(checked.height());
    let mut new_details: Vec<Option<String>> = Vec::with_capacity(checked.height());
    for (k, failure) in failures.iter().enumerate() {
        match (reasons.get(k), failure) {
            (None, Some((reason, detail))) => {
                new_reasons.push(Some(reason.clone()));
                new_details.push(Some(detail.clone()));
            }
            (reason, _) => {
                new_reasons.push(reason.map(str::to_string));
                new_details.push(details.get(k).map(str::to_string));
            }
        }
    }
    let mut checked = checked;
    checked.with_column(Column::new(COL_REASON.into(), new_reasons))?;
    checked.with_column(Column::new(COL_DETAIL.into(), new_details))?;
    Ok(checked)
}

//! Checks a data team declares on a table (`[[check]]` in its contract): a measure of the
//! rows the table holds, whole or per day, judged against `warn` and `fail` thresholds and,
//! for an anomaly check, against the same measure's recent past (median and MAD, robust to
//! the odd bad day). `pg::checks` measures in SQL and keeps each evaluation's history.

use serde::Serialize;

/// One `[[check]]`.
#[derive(Debug, Clone)]
pub struct DeclaredCheck {
    pub name: String,
    pub measure: Measure,
    /// Evaluated per day of the dataset's `day` column (else over the whole table).
    pub per_day: bool,
    pub warn: Option<Threshold>,
    pub fail: Option<Threshold>,
    pub anomaly: Option<Anomaly>,
}

/// What a check measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    Metric(Metric),
    /// A query whose rows are counted (`{table}` stands for the table): the rows that break
    /// a rule no metric says.
    Sql(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    RowCount,
    /// The share of rows where the column is null.
    MissingShare(String),
    /// The share of rows repeating an earlier row's values of these columns.
    DuplicateShare(Vec<String>),
    Distinct(String),
    Min(String),
    Max(String),
    Avg(String),
    Sum(String),
    /// The share of the records loaded that were rejected (for one reason, if given).
    RejectShare(Option<String>),
    /// Seconds since the column's newest value.
    Freshness(String),
    /// The share of rows whose column value the referenced table's column does not hold.
    UnmatchedShare {
        column: String,
        table: String,
        other: String,
    },
}

impl Metric {
    /// The metrics' names and what they take, for messages.
    pub const SYNTAX: &'static str = "row_count, missing_share(col), duplicate_share(col, ...), distinct(col), min(col), max(col), \
         avg(col), sum(col), reject_share, reject_share(reason), freshness(col), unmatched_share(col)";

    /// A metric as written (`missing_share(device_id)`): its name and arguments. Whether the
    /// columns exist is for the contract to say.
    pub fn parse(text: &str, references: Option<(&str, &str)>) -> Result<Metric, String> {
        let text = text.trim();
        let (name, args) = match text.split_once('(') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix(')').ok_or_else(|| format!("{text:?}: a ( without its )"))?;
                let args: Vec<String> = inner.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect();
                (name.trim(), Some(args))
            }
            None => (text, None),
        };
        let one = |args: &Option<Vec<String>>| match args.as_deref() {
            Some([col]) => Ok(col.clone()),
            _ => Err(format!("{name} takes one column: {name}(col)")),
        };
        Ok(match name {
            "row_count" if args.is_none() => Metric::RowCount,
            "reject_share" => match args.as_deref() {
                None | Some([]) => Metric::RejectShare(None),
                Some([reason]) => Metric::RejectShare(Some(reason.clone())),
                Some(_) => return Err("reject_share takes at most one reason".into()),
            },
            "missing_share" => Metric::MissingShare(one(&args)?),
            "duplicate_share" => match args {
                Some(cols) if !cols.is_empty() => Metric::DuplicateShare(cols),
                _ => return Err("duplicate_share takes one column or more: duplicate_share(a, b)".into()),
            },
            "distinct" => Metric::Distinct(one(&args)?),
            "min" => Metric::Min(one(&args)?),
            "max" => Metric::Max(one(&args)?),
            "avg" => Metric::Avg(one(&args)?),
            "sum" => Metric::Sum(one(&args)?),
            "freshness" => Metric::Freshness(one(&args)?),
            "unmatched_share" => {
                let column = one(&args)?;
                let (table, other) = references.ok_or("unmatched_share needs `references = \"table(column)\"`")?;
                Metric::UnmatchedShare { column, table: table.to_string(), other: other.to_string() }
            }
            _ => return Err(format!("unknown metric {text:?} (one of {})", Metric::SYNTAX)),
        })
    }

    /// The columns of its own table it reads.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Metric::RowCount | Metric::RejectShare(_) => Vec::new(),
            Metric::DuplicateShare(cols) => cols.iter().map(String::as_str).collect(),
            Metric::MissingShare(c) | Metric::Distinct(c) | Metric::Min(c) | Metric::Max(c) | Metric::Avg(c) | Metric::Sum(c) => vec![c],
            Metric::Freshness(c) | Metric::UnmatchedShare { column: c, .. } => vec![c],
        }
    }
}

impl std::fmt::Display for Metric {
    /// As a contract writes it.
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Metric::RowCount => write!(f, "row_count"),
            Metric::MissingShare(c) => write!(f, "missing_share({c})"),
            Metric::DuplicateShare(cols) => write!(f, "duplicate_share({})", cols.join(", ")),
            Metric::Distinct(c) => write!(f, "distinct({c})"),
            Metric::Min(c) => write!(f, "min({c})"),
            Metric::Max(c) => write!(f, "max({c})"),
            Metric::Avg(c) => write!(f, "avg({c})"),
            Metric::Sum(c) => write!(f, "sum({c})"),
            Metric::RejectShare(None) => write!(f, "reject_share"),
            Metric::RejectShare(Some(r)) => write!(f, "reject_share({r})"),
            Metric::Freshness(c) => write!(f, "freshness({c})"),
            Metric::UnmatchedShare { column, table, other } => write!(f, "unmatched_share({column}) in {table}({other})"),
        }
    }
}

impl DeclaredCheck {
    /// What it measures, said: `row_count per day`, `sql: select ...`.
    pub fn measure_text(&self) -> String {
        let what = match &self.measure {
            Measure::Metric(m) => m.to_string(),
            Measure::Sql(sql) => format!("rows of: {}", sql.split_whitespace().collect::<Vec<_>>().join(" ")),
        };
        match self.per_day {
            true => format!("{what} per day"),
            false => what,
        }
    }
}

/// A bound the measured value must not cross: `< 1000`, `>= 0.01`, `> 6h` (durations in
/// s, m, h or d, for freshness).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    #[serde(skip)]
    pub op: Op,
    #[serde(skip)]
    pub value: f64,
    /// As written.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Threshold {
    pub fn parse(text: &str) -> Result<Threshold, String> {
        let t = text.trim();
        let (op, rest) = [("<=", Op::Le), (">=", Op::Ge), ("!=", Op::Ne), ("==", Op::Eq), ("<", Op::Lt), (">", Op::Gt), ("=", Op::Eq)]
            .iter()
            .find_map(|(s, op)| t.strip_prefix(s).map(|r| (*op, r.trim())))
            .ok_or_else(|| format!("{text:?}: a comparison and a number, such as \"< 1000\" or \"> 0.01\""))?;
        let (number, unit) = match rest.char_indices().find(|(_, c)| matches!(c, 's' | 'm' | 'h' | 'd')) {
            Some((i, _)) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let scale = match unit.trim() {
            "" | "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            other => return Err(format!("{text:?}: unknown unit {other:?} (s, m, h or d)")),
        };
        let value: f64 = number.trim().parse().map_err(|_| format!("{text:?}: {:?} is not a number", number.trim()))?;
        if !value.is_finite() {
            return Err(format!("{text:?}: not a finite number"));
        }
        Ok(Threshold { op, value: value * scale, text: t.to_string() })
    }

    /// Whether `value` crosses the bound (the check then warns or fails).
    pub fn crossed(&self, value: f64) -> bool {
        match self.op {
            Op::Lt => value < self.value,
            Op::Le => value <= self.value,
            Op::Gt => value > self.value,
            Op::Ge => value >= self.value,
            Op::Eq => value == self.value,
            Op::Ne => value != self.value,
        }
    }
}

/// Against the measure's own past: a value further than `sensitivity` robust deviations
/// (MAD scaled to a normal's standard deviation) from the median of the last `window`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anomaly {
    pub window: usize,
    pub sensitivity: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
        }
    }
}

/// One check's verdict on one group (a day, or the whole table).
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub dataset: String,
    pub check: String,
    /// The day (`YYYY-MM-DD`) of a per-day check; none for the whole table.
    pub group: Option<String>,
    /// None where there is nothing to measure (an average of no rows).
    pub value: Option<f64>,
    pub warn: Option<String>,
    pub fail: Option<String>,
    pub outcome: Outcome,
    /// Why it warned or failed: the threshold crossed, or the past it strays from.
    pub detail: String,
    /// Of a row-level check that warned or failed (sql, missing_share, unmatched_share): up
    /// to `FAILING_ROWS` of the rows at fault, as JSON (their `unique` key, else the row).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failing_rows: Vec<String>,
}

/// The most rows at fault kept per evaluation.
pub const FAILING_ROWS: usize = 100;

/// What the thresholds say of a value (no value: an empty table or day, which passes
/// unless a threshold is crossed by 0 for counts).
pub fn judge(check: &DeclaredCheck, value: f64) -> Outcome {
    if check.fail.as_ref().is_some_and(|t| t.crossed(value)) {
        Outcome::Fail
    } else if check.warn.as_ref().is_some_and(|t| t.crossed(value)) {
        Outcome::Warn
    } else {
        Outcome::Pass
    }
}

/// Whether `value` is an anomaly against `past` (its recent values, any order): further
/// from their median than `sensitivity` times 1.4826 MAD. Fewer than three past values say
/// nothing; a past with no spread makes any other value an anomaly.
pub fn is_anomaly(value: f64, past: &[f64], sensitivity: f64) -> bool {
    if past.len() < 3 {
        return false;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let mid = median(&mut past.to_vec());
    let mad = median(&mut past.iter().map(|v| (v - mid).abs()).collect()) * 1.4826;
    match mad == 0.0 {
        true => value != mid,
        false => (value - mid).abs() > sensitivity * mad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_and_thresholds_read_as_written() {
        assert_eq!(Metric::parse("row_count", None), Ok(Metric::RowCount));
        assert_eq!(Metric::parse(" missing_share( device_id ) ", None), Ok(Metric::MissingShare("device_id".into())));
        assert_eq!(Metric::parse("duplicate_share(a, b)", None), Ok(Metric::DuplicateShare(vec!["a".into(), "b".into()])));
        assert_eq!(Metric::parse("reject_share", None), Ok(Metric::RejectShare(None)));
        assert_eq!(Metric::parse("reject_share(bad_number)", None), Ok(Metric::RejectShare(Some("bad_number".into()))));
        assert!(Metric::parse("unmatched_share(city)", None).is_err());
        assert!(Metric::parse("median(x)", None).unwrap_err().contains("unknown metric"));
        assert!(Metric::parse("min(a, b)", None).is_err());
        let t = Threshold::parse("> 6h").unwrap();
        assert_eq!((t.op, t.value), (Op::Gt, 21600.0));
        assert!(Threshold::parse("<1000").unwrap().crossed(999.0));
        assert!(!Threshold::parse("<= 0.01").unwrap().crossed(0.02));
        assert!(Threshold::parse("about 5").is_err());
        assert!(Threshold::parse("> 5 weeks").is_err());
    }

    #[test]
    fn an_anomaly_is_far_from_the_median_in_robust_deviations() {
        let past = [1000.0, 1020.0, 980.0, 1010.0, 990.0, 5000.0];
        assert!(!is_anomaly(1005.0, &past, 3.0));
        assert!(is_anomaly(330.0, &past, 3.0));
        assert!(!is_anomaly(330.0, &past[..2], 3.0));
        assert!(is_anomaly(7.0, &[5.0, 5.0, 5.0], 3.0));
    }
}

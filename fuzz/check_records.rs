//! What must hold for any input to the framing scanner and the record parsers; shared by
//! the fuzz target (fuzz/) and the regression test that replays what fuzzing found.
//! Both include this file by path as a module of a crate root that has `dataset`, `source`,
//! `transform` and `values` (the fuzz target's, and tier's own under `cfg(test)`).

use super::dataset::{Dataset, Field, Key, Kind, Rules};
use super::source::framing::scan;
use super::transform::record::{check_cells, parse_flat, parse_json, parse_record, KeyHints, MALFORMED};

pub fn check(data: &[u8]) {
    // The scanner consumes everything, and its spans are ordered, disjoint and in bounds.
    let whole = scan(data, 1, true);
    assert_eq!(whole.resume_at, data.len());
    let (mut last_end, mut last_line) = (0, 1);
    for s in &whole.spans {
        assert!(last_end <= s.start && s.start <= s.end && s.end <= data.len(), "{s:?}");
        assert!(s.line >= last_line);
        (last_end, last_line) = (s.end, s.line);
    }
    // Scanning in two pieces finds the same records as scanning at once.
    let half = data.len() / 2;
    let first = scan(&data[..half], 1, false);
    let rest = scan(&data[first.resume_at..], first.resume_line, true);
    let pieces: Vec<(u64, usize, usize)> = first
        .spans
        .iter()
        .map(|s| (s.line, s.start, s.end))
        .chain(rest.spans.iter().map(|s| (s.line, s.start + first.resume_at, s.end + first.resume_at)))
        .collect();
    let at_once: Vec<(u64, usize, usize)> = whole.spans.iter().map(|s| (s.line, s.start, s.end)).collect();
    assert_eq!(pieces, at_once, "split at {half}");

    // Both parsers agree wherever the fast one answers; the full one never panics.
    for &ds in datasets() {
        let mut hints = KeyHints::default();
        for s in whole.spans.iter().filter(|s| s.damage.is_none()) {
            let bytes = &data[s.start..s.end];
            let mut cells = Vec::new();
            let _ = parse_record(ds, bytes, &mut cells, &mut hints);
            let mut fast = Vec::new();
            let Some(f) = parse_flat(ds, bytes, &mut fast, &mut KeyHints::default()) else { continue };
            let mut slow = Vec::new();
            let full = parse_json(ds, bytes, &mut slow).map_err(|e| (MALFORMED, e)).and_then(|x| check_cells(ds, &slow).map(|_| x));
            match (&f, &full) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b);
                    assert_eq!(fast, slow);
                }
                (Err(a), Err(b)) => assert_eq!(a.0, b.0),
                // serde_json cannot read the NaN family; the full path quotes them first.
                _ if bytes.windows(3).any(|w| w == b"NaN" || w == b"Inf") => {}
                _ => panic!("the parsers disagree on {:?}: {f:?} vs {full:?}", String::from_utf8_lossy(bytes)),
            }
        }
    }
}

/// Two datasets declared in code (the fuzz target has no contract reader): the BI
/// framing's flat, prefixed keys, and nested keys read through JSON Pointers.
fn datasets() -> &'static [&'static Dataset] {
    static SETS: std::sync::OnceLock<Vec<&'static Dataset>> = std::sync::OnceLock::new();
    SETS.get_or_init(|| {
        let field = |name: &str, key: &str, kind: Kind, required: bool| Field {
            name: name.into(),
            key: Key::parse(key),
            kind,
            required,
            rules: Rules::default(),
            timezone: None,
            format: super::values::timestamp::Format::Iso,
            evolved: false,
        };
        let flat = Dataset::new(
            "weather".into(),
            "weather.json".into(),
            "weather_data.".into(),
            vec![
                field("city", "city", Kind::Text, true),
                field("date_time", "date_time", Kind::Timestamp, true),
                field("humidity", "currently_humidity", Kind::Double, false),
                field("rating", "rating", Kind::Integer, false),
                field("doc", "doc", Kind::Json, false),
            ],
            Some("date_time".into()),
            Vec::new(),
            "fuzz".into(),
        );
        let nested = Dataset::new(
            "events".into(),
            "events.json".into(),
            String::new(),
            vec![
                field("id", "messageId", Kind::Text, true),
                field("version", "/context/app/version", Kind::Text, false),
                field("device", "/context/device", Kind::Json, false),
                field("amount", "/properties/amount", Kind::Numeric, false),
            ],
            None,
            Vec::new(),
            "fuzz".into(),
        );
        vec![Box::leak(Box::new(flat)) as &'static Dataset, Box::leak(Box::new(nested))]
    })
}

/// Replays every input in fuzz/corpus/ and fuzz/regressions/ (what fuzzing found).
#[cfg(test)]
#[test]
fn fuzz_corpus_and_regressions_hold() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["corpus/records", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        for e in entries {
            let path = e.unwrap().path();
            check(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    assert!(n > 0, "no fuzz inputs found under {}", root.display());
}

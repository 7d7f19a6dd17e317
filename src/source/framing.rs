//! Splits an export into records, whatever its framing.
//!
//! The BI tool writes `[`, then one object per line separated by `,` + newline, and usually
//! never writes the closing `]`. Other files are NDJSON or a standard (pretty-printed)
//! array. Rather than guessing the framing, the scanner treats `[`, `]`, `,` and whitespace
//! between top-level values as separators and cuts out each top-level `{...}` by tracking
//! strings and brackets. It never parses values: that happens later, in parallel.
//!
//! A damaged record must not swallow its good neighbours, so the scanner also cuts a
//! record short where JSON cannot continue: a raw newline inside a string, or an object
//! opening where none may open (after a value, or at the start of a line after `"key":`,
//! which is how a truncated BI line followed by the next record looks).
//!
//! A record whose `{` has content after it on the same line is a line record (the BI
//! framing, NDJSON, a compact array): it ends at its line end once its brackets are still
//! open there and the next line starts an object, so an unclosed `[` cannot turn the
//! following lines' objects into its elements. A pretty-printed record (`{` alone on its
//! line) may span lines. A closer that does not match the open bracket (`]` for `{`) is
//! not popped, and text after a record's closing brace on the same line belongs to that
//! record. Once a line record is damaged, the rest of its line belongs to it (an object
//! that opens where none may, `{{`, or text and objects after its closing brace): one
//! damaged line is one rejected record, so loaded + rejected still counts the records a
//! person sees. Records of a compact array on one line are many records while none is
//! damaged.

/// Why a span of bytes could not be a record. The span is still kept and quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// Bytes at the top level that do not start an object (garbage, a bare number, ...).
    NotAnObject,
    /// An object cut short before its closing brace.
    Truncated,
    /// A raw line break inside a string: the line was cut inside a value.
    OpenString,
    /// The file ended inside an object.
    UnexpectedEof,
    /// A `]` or `}` that closes no bracket that is open.
    StrayCloser,
    /// Text after the record's closing brace on the same line.
    TrailingText,
    /// Longer than `--max-record-bytes`: only its start is kept.
    TooLong,
    /// A message with no value (a Kafka tombstone) or only whitespace.
    Empty,
}

impl Damage {
    pub fn describe(self) -> &'static str {
        match self {
            Damage::NotAnObject => "not a JSON object",
            Damage::Truncated => "record cut short (the next record starts before this one closes)",
            Damage::OpenString => "line ends inside a string (record cut short)",
            Damage::UnexpectedEof => "file ends inside this record",
            Damage::StrayCloser => "a closing bracket that matches no open one",
            Damage::TrailingText => "text after the record's closing brace",
            Damage::TooLong => "record longer than --max-record-bytes (only its first 64 KB are kept here)",
            Damage::Empty => "an empty message (no value)",
        }
    }
}

/// One record's bytes within a scanned buffer, the 1-based line it starts on, and its
/// 1-based ordinal in the file (set by the reader: a line may hold many records, so the
/// ordinal, not the line, is a record's identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub line: u64,
    pub record: u64,
    pub start: usize,
    pub end: usize,
    pub damage: Option<Damage>,
}

/// Result of scanning a buffer that may end mid-record.
#[derive(Debug)]
pub struct Scan {
    pub spans: Vec<Span>,
    /// Offset where unfinished input begins (the buffer's length if none is unfinished).
    pub resume_at: usize,
    /// Line number at `resume_at`.
    pub resume_line: u64,
}

const MAX_TRACKED_DEPTH: usize = 4096;

/// Scans `buf` starting at the top level on line `line`. One function, one loop: the
/// scanner's state (where a string or record began, the open brackets, the damage seen) lives
/// in its locals, and splitting it into calls cost a tenth of the framing's time.
/// With `eof` false, an unfinished
/// record or line at the end is left for the next call (see `Scan::resume_at`); with
/// `eof` true it is reported as damaged.
pub fn scan(buf: &[u8], mut line: u64, eof: bool) -> Scan {
    let mut spans = Vec::new();
    let mut pos = 0usize;
    let n = buf.len();
    // A record that had to be re-opened after a cut (see module docs) starts here.
    let mut pending_start: Option<(usize, u64)> = None;
    // A string ends at its closing quote, or (damaged) at a raw line break.
    let string_end = crate::search::Three::new(b'"', b'\\', b'\n');
    loop {
        let (start, start_line) = match pending_start.take() {
            Some(p) => p,
            None => {
                // Top level: skip separators.
                while pos < n {
                    match buf[pos] {
                        b'\n' => {
                            line += 1;
                            pos += 1;
                        }
                        b' ' | b'\t' | b'\r' | b',' | b'[' | b']' => pos += 1,
                        _ => break,
                    }
                }
                if pos >= n {
                    return Scan { spans, resume_at: n, resume_line: line };
                }
                if buf[pos] != b'{' {
                    // Garbage up to the end of the line is one damaged record.
                    match memchr::memchr(b'\n', &buf[pos..]) {
                        Some(off) => {
                            let mut end = pos + off;
                            if end > pos && buf[end - 1] == b'\r' {
                                end -= 1;
                            }
                            spans.push(Span { line, record: 0, start: pos, end, damage: Some(Damage::NotAnObject) });
                            pos += off; // the newline is counted by the top-level loop
                            continue;
                        }
                        None if eof => {
                            spans.push(Span { line, record: 0, start: pos, end: n, damage: Some(Damage::NotAnObject) });
                            return Scan { spans, resume_at: n, resume_line: line };
                        }
                        None => return Scan { spans, resume_at: pos, resume_line: line },
                    }
                }
                (pos, line)
            }
        };

        // Inside a record: `start` is its `{`.
        let mut stack: Vec<u8> = Vec::with_capacity(8);
        let mut extra_depth = 0usize; // depth past MAX_TRACKED_DEPTH, tracked as a count only
        let mut prev: u8 = 0; // last significant byte outside strings
        let mut at_line_start = false;
        let mut stray = false; // a closer matched nothing open
        let line_record = !opens_alone_on_its_line(&buf[start + 1..]);
        let mut i = start;
        let mut line_here = start_line;
        let mut outcome: Option<(usize, Option<Damage>)> = None; // end, damage
        while i < n {
            let b = buf[i];
            match b {
                b'"' => {
                    // Jump through the string.
                    let mut j = i + 1;
                    let closed = loop {
                        match string_end.find(&buf[j..]) {
                            None => break None,
                            Some(off) => {
                                let k = j + off;
                                match buf[k] {
                                    b'"' => break Some(Ok(k)),
                                    b'\\' => j = k + 2,
                                    _ => break Some(Err(k)), // raw newline: the string never closes
                                }
                                if j >= n {
                                    break None;
                                }
                            }
                        }
                    };
                    match closed {
                        Some(Ok(k)) => {
                            i = k + 1;
                            prev = b'"';
                            at_line_start = false;
                        }
                        Some(Err(k)) => {
                            let mut end = k;
                            if end > start && buf[end - 1] == b'\r' {
                                end -= 1;
                            }
                            outcome = Some((end, Some(Damage::OpenString)));
                            i = k;
                            break;
                        }
                        None => {
                            i = n;
                            break;
                        }
                    }
                    continue;
                }
                b'\n' => {
                    if line_record {
                        // Brackets are still open at this line's end: the record ends here
                        // if the next line starts an object.
                        match next_significant(buf, i + 1) {
                            Some(k) if buf[k] == b'{' => {
                                let mut end = i;
                                while end > start && buf[end - 1].is_ascii_whitespace() {
                                    end -= 1;
                                }
                                outcome = Some((end, Some(if stray { Damage::StrayCloser } else { Damage::Truncated })));
                                break;
                            }
                            None if !eof => {
                                // Cannot tell yet: scan this record again with more input.
                                i = n;
                                break;
                            }
                            _ => {}
                        }
                    }
                    line_here += 1;
                    at_line_start = true;
                }
                b' ' | b'\t' | b'\r' => {}
                b'{' | b'[' => {
                    let depth = stack.len() + extra_depth;
                    if b == b'{' && depth > 0 {
                        let top = stack.last().copied().unwrap_or(b'{');
                        let may_open = (prev == b':' && !at_line_start) || (top == b'[' && (prev == b'[' || prev == b','));
                        if !may_open && line_record {
                            // A line record cannot go on here (`{{`, `{"a":1,{`): the rest
                            // of its line is part of the damage, one reject for one line.
                            match rest_of_line(buf, i, start, eof) {
                                Some((end, newline)) => {
                                    outcome = Some((end, Some(Damage::Truncated)));
                                    i = newline;
                                }
                                None => i = n, // the line goes on past the buffer: read more
                            }
                            break;
                        }
                        if !may_open {
                            // A pretty-printed record was cut short; a new one starts here.
                            let mut end = i;
                            while end > start && buf[end - 1].is_ascii_whitespace() {
                                end -= 1;
                            }
                            outcome = Some((end, Some(Damage::Truncated)));
                            pending_start = Some((i, line_here));
                            break;
                        }
                    }
                    if stack.len() < MAX_TRACKED_DEPTH {
                        stack.push(b);
                    } else {
                        extra_depth += 1;
                    }
                    prev = b;
                    at_line_start = false;
                }
                b'}' | b']' => {
                    if extra_depth > 0 {
                        extra_depth -= 1;
                    } else if stack.last() == Some(&if b == b'}' { b'{' } else { b'[' }) {
                        stack.pop();
                    } else {
                        // Closes nothing that is open: damage, but not the record's end.
                        stray = true;
                    }
                    prev = b;
                    at_line_start = false;
                    if stack.is_empty() && extra_depth == 0 {
                        // What follows on the same line must be separators or the next
                        // record; anything else is part of this damaged record.
                        let mut k = i + 1;
                        while k < n && matches!(buf[k], b' ' | b'\t' | b'\r' | b',' | b'[' | b']') {
                            k += 1;
                        }
                        if k == n && !eof {
                            i = n;
                            break;
                        }
                        if k < n && !matches!(buf[k], b'\n' | b'{') {
                            // Text after the closing brace: the rest of the line is part of
                            // this damaged record, objects in it included.
                            match rest_of_line(buf, k, start, eof) {
                                Some((end, newline)) => {
                                    outcome = Some((end, Some(Damage::TrailingText)));
                                    i = newline;
                                }
                                None => i = n,
                            }
                            break;
                        }
                        outcome = Some((i + 1, stray.then_some(Damage::StrayCloser)));
                        i += 1;
                        break;
                    }
                }
                _ => {
                    prev = b;
                    at_line_start = false;
                }
            }
            i += 1;
        }
        match outcome {
            Some((end, damage)) => {
                spans.push(Span { line: start_line, record: 0, start, end, damage });
                // Lines inside the record were counted in line_here; a string cut by a raw
                // newline leaves `i` on that newline for the top level to count.
                line = line_here;
                pos = i;
            }
            None if eof => {
                let mut end = n;
                while end > start && buf[end - 1].is_ascii_whitespace() {
                    end -= 1;
                }
                spans.push(Span { line: start_line, record: 0, start, end, damage: Some(Damage::UnexpectedEof) });
                return Scan { spans, resume_at: n, resume_line: line_here };
            }
            None => return Scan { spans, resume_at: start, resume_line: start_line },
        }
    }
}

/// Where the line holding `from` ends: the record's end (before the line break and any
/// whitespace, not before `start`) and the line break's offset (the buffer's end at the end
/// of the file); `None` when the line goes on past the buffer and more input may come.
fn rest_of_line(buf: &[u8], from: usize, start: usize, eof: bool) -> Option<(usize, usize)> {
    let newline = match memchr::memchr(b'\n', &buf[from..]) {
        Some(off) => from + off,
        None if eof => buf.len(),
        None => return None,
    };
    let mut end = newline;
    while end > start && buf[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    Some((end, newline))
}

/// Whether an object's `{` (the bytes after it given) is the last thing on its line: the
/// mark of a pretty-printed record, which may span lines.
fn opens_alone_on_its_line(after: &[u8]) -> bool {
    after.iter().find(|c| !matches!(c, b' ' | b'\t' | b'\r')).is_none_or(|c| *c == b'\n')
}

/// The first byte from `from` on that is not whitespace or a comma, if the buffer has one.
fn next_significant(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..].iter().position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b',')).map(|k| from + k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &str) -> Vec<(u64, String, Option<Damage>)> {
        let s = scan(input.as_bytes(), 1, true);
        assert_eq!(s.resume_at, input.len());
        s.spans.iter().map(|sp| (sp.line, input[sp.start..sp.end].to_string(), sp.damage)).collect()
    }

    fn ok(line: u64, s: &str) -> (u64, String, Option<Damage>) {
        (line, s.to_string(), None)
    }

    #[test]
    fn bi_framing_unclosed() {
        let r = records("[{\"a\":1},\n{\"a\":2},\n{\"a\":3}");
        assert_eq!(r, vec![ok(1, "{\"a\":1}"), ok(2, "{\"a\":2}"), ok(3, "{\"a\":3}")]);
    }

    #[test]
    fn bi_framing_closed_trailing_comma_crlf() {
        let r = records("[{\"a\":1},\r\n{\"a\":\"x,}\"},\r\n]\r\n");
        assert_eq!(r, vec![ok(1, "{\"a\":1}"), ok(2, "{\"a\":\"x,}\"}")]);
    }

    #[test]
    fn ndjson_and_pretty_array() {
        let r = records("{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(r, vec![ok(1, "{\"a\":1}"), ok(2, "{\"a\":2}")]);
        let pretty = "[\n  {\n    \"a\": {\"b\": [1, {\"c\": 2}]}\n  },\n  {\n    \"a\": 2\n  }\n]\n";
        let r = records(pretty);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0, 2);
        assert_eq!(r[1].0, 5);
        assert!(r.iter().all(|x| x.2.is_none()));
    }

    #[test]
    fn escaped_quotes_do_not_end_strings() {
        let r = records("{\"a\":\"say \\\"}{\\\" \\\\\"}\n{\"b\":1}");
        assert_eq!(r, vec![ok(1, "{\"a\":\"say \\\"}{\\\" \\\\\"}"), ok(2, "{\"b\":1}")]);
    }

    #[test]
    fn garbage_line_is_kept_as_damaged() {
        let r = records("[{\"a\":1},\nhello world\n{\"a\":2}");
        assert_eq!(r[1], (2, "hello world".to_string(), Some(Damage::NotAnObject)));
        assert_eq!(r[2], ok(3, "{\"a\":2}"));
    }

    #[test]
    fn truncated_line_does_not_swallow_next_record() {
        // cut after a value, after a comma, after a colon, and inside a string
        for cut in ["{\"a\":1, \"b\":2", "{\"a\":1,", "{\"a\":"] {
            let input = format!("[{cut}\n{{\"a\":2}},\n{{\"a\":3}}");
            let r = records(&input);
            assert_eq!(r.len(), 3, "{input}");
            assert_eq!(r[0], (1, cut.to_string(), Some(Damage::Truncated)), "{input}");
            assert_eq!(r[1], ok(2, "{\"a\":2}"), "{input}");
            assert_eq!(r[2], ok(3, "{\"a\":3}"), "{input}");
        }
    }

    #[test]
    fn line_cut_inside_a_string() {
        let r = records("[{\"a\":\"xy\n{\"a\":2}");
        assert_eq!(r[0], (1, "{\"a\":\"xy".to_string(), Some(Damage::OpenString)));
        assert_eq!(r[1], ok(2, "{\"a\":2}"));
    }

    #[test]
    fn eof_inside_record() {
        let r = records("[{\"a\":1},\n{\"a\":2, \"b\"");
        assert_eq!(r[1], (2, "{\"a\":2, \"b\"".to_string(), Some(Damage::UnexpectedEof)));
    }

    #[test]
    fn unfinished_input_is_left_for_next_call() {
        let input = b"[{\"a\":1},\n{\"a\":2";
        let s = scan(input, 1, false);
        assert_eq!(s.spans.len(), 1);
        assert_eq!(s.resume_at, 10);
        assert_eq!(s.resume_line, 2);
        let s = scan(b"{\"a\":1}\njunk", 1, false);
        assert_eq!(s.spans.len(), 1);
        assert_eq!(s.resume_at, 8);
    }

    #[test]
    fn empty_and_separator_only_inputs() {
        for input in ["", "[", "]", "[]", " \n\t\r\n", "[\n,\n]"] {
            assert!(records(input).is_empty(), "{input:?}");
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = format!("{{\"a\":{}{}}}\n{{\"b\":1}}", "[".repeat(10_000), "]".repeat(10_000));
        let r = records(&deep);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1], ok(2, "{\"b\":1}"));
    }

    #[test]
    fn unclosed_bracket_does_not_swallow_the_next_lines() {
        // An unclosed array or a stray `[` / `{[` leaves brackets open at the line's end;
        // the next line's object must start a record of its own, in the BI framing and NDJSON.
        for cut in ["{\"os_name\": [1, 2,", "{\"os_name\": [1, 2", "{[", "{\"a\": 1, [", "{\"a\": {\"b\": [{\"c\": 1},"] {
            for (open, sep) in [("[", ",\n"), ("", "\n"), ("[", ",\r\n")] {
                let input = format!("{open}{cut}{sep}{{\"a\":2}}{sep}{{\"a\":3}}{sep}");
                let r = records(&input);
                assert_eq!(r.len(), 3, "{input:?}: {r:?}");
                assert!(r[0].1 == cut || r[0].1 == format!("{cut},"), "{input:?}: {r:?}");
                assert!(r[0].2.is_some(), "{input:?}");
                assert_eq!(r[1], ok(2, "{\"a\":2}"), "{input:?}");
                assert_eq!(r[2], ok(3, "{\"a\":3}"), "{input:?}");
            }
        }
    }

    #[test]
    fn one_damaged_line_is_one_record() {
        for bad in ["{\"a\": 1]}", "{\"a\": [1}]}", "{\"a\": 1}}", "{\"a\": 1}]x", "{\"a\": 1} \"b\": 2}", "{\"a\": 1]"] {
            let input = format!("[{bad},\n{{\"a\":2}},\n{{\"a\":3}}]");
            let r = records(&input);
            assert_eq!(r.len(), 3, "{input:?}: {r:?}");
            assert_eq!(r[0].0, 1);
            assert!(r[0].2.is_some(), "{bad} must be damaged: {r:?}");
            assert!(bad.starts_with(r[0].1.trim_end_matches(',')), "{bad}: {r:?}");
            assert_eq!(r[1], ok(2, "{\"a\":2}"), "{input:?}");
            assert_eq!(r[2], ok(3, "{\"a\":3}"), "{input:?}");
        }
        // Several records on one line (a compact array) are still several records.
        let r = records("[{\"a\":1},{\"a\":2}, {\"a\":3}]");
        assert_eq!(r, vec![ok(1, "{\"a\":1}"), ok(1, "{\"a\":2}"), ok(1, "{\"a\":3}")]);
    }

    #[test]
    fn damage_takes_the_rest_of_its_line_and_no_more() {
        // Each of these lines is one damaged record, whatever objects it holds after the damage.
        for bad in [
            "{{\"a\":1}",
            "{{\"a\":1}}",
            "{\"a\":1}#",
            "{\"a\":1} # {\"b\":2}",
            "{\"a\":1}\u{feff}{\"b\":2}",
            "{\"a\":1,{\"a\":2}",
            "{\"a\":1}x{\"a\":2},{\"a\":3}]",
            "\u{feff}{\"a\":2}",
        ] {
            for (open, sep) in [("[", ",\n"), ("", "\n"), ("", "\r\n")] {
                let input = format!("{open}{{\"a\":0}}{sep}{bad}{sep}{{\"a\":3}}{sep}");
                let r = records(&input);
                assert_eq!(r.len(), 3, "{input:?}: {r:?}");
                assert_eq!(r[0], ok(1, "{\"a\":0}"), "{input:?}");
                assert_eq!(r[1].0, 2, "{input:?}");
                assert!(r[1].2.is_some(), "{input:?}: {r:?}");
                assert_eq!(r[1].1.trim_end_matches(','), bad, "{input:?}");
                assert_eq!(r[2], ok(3, "{\"a\":3}"), "{input:?}");
            }
        }
        // At the end of a buffer that is not the file's end, the damaged line waits for more.
        let s = scan(b"{\"a\":0}\n{{\"a\":1} {\"b\"", 1, false);
        assert_eq!((s.spans.len(), s.resume_at), (1, 8));
        let s = scan(b"{\"a\":0}\n{\"a\":1}# {\"b\"", 1, false);
        assert_eq!((s.spans.len(), s.resume_at), (1, 8));
    }

    #[test]
    fn pretty_records_may_hold_objects_at_line_starts() {
        let pretty = "[\n  {\n    \"a\": [\n      {\"c\": 1},\n      {\"c\": 2}\n    ],\n    \"b\": 1\n  },\n  {\n    \"a\": 2\n  }\n]\n";
        let r = records(pretty);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r.iter().all(|x| x.2.is_none()), "{r:?}");
        assert_eq!((r[0].0, r[1].0), (2, 9));
    }
}

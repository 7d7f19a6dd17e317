//! The defects found when tier was tried from outside: each test failed before its fix.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// The ledger's `ok` loads of a table are exactly the loads whose rows the table holds.
fn assert_ledger_agrees(env: &Env, table: &str) {
    let ok =
        env.query_strings(&format!("SELECT id::text FROM {{s}}.tier_loads WHERE table_name = '{table}' AND status = 'ok' ORDER BY id"));
    let held = env.query_strings(&format!("SELECT DISTINCT load_id::text FROM {{s}}.{table} ORDER BY 1"));
    let ids = |rows: Vec<Vec<Option<String>>>| -> Vec<i64> {
        let mut v: Vec<i64> = rows.into_iter().map(|r| r[0].as_ref().unwrap().parse().unwrap()).collect();
        v.sort();
        v
    };
    assert_eq!(ids(ok), ids(held), "the ledger's ok loads must be the loads in {table}");
}

fn spawn(mut cmd: std::process::Command) -> Child {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

fn finish(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Backends of `tier` sessions (other than `except`) that `blocker` holds up.
fn blocked_by(blocker: i32, except: &[i32]) -> Vec<i32> {
    client()
        .query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'tier' AND $1 = ANY(pg_blocking_pids(pid)) AND NOT pid = ANY($2)",
            &[&blocker, &except],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Waits until `cond` gives something, or `child` ends (then `None`).
fn wait_for<T>(what: &str, child: &mut Child, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(t) = cond() {
            return Some(t);
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn two_files(env: &Env) {
    let first: Vec<String> = (0..3).map(|i| weather_line("Oslo", &format!("2019-06-04 1{i}:00:00"), "0.5")).collect();
    env.write("weather.json", format!("[{}]", first.join(",\n")));
    let (code, _, err) = run(env.tier(&["load", "weather"]));
    assert_eq!(code, 0, "{err}");
    let replace: Vec<String> = (0..4).map(|i| weather_line("Bergen", &format!("2019-06-05 1{i}:00:00"), "0.5")).collect();
    env.write("weather.json", format!("[{}]", replace.join(",\n")));
    let append: Vec<String> = (0..2).map(|i| weather_line("Tromso", &format!("2019-06-06 1{i}:00:00"), "0.5")).collect();
    env.write("append.json", format!("[{}]", append.join(",\n")));
}

#[test]
fn an_append_during_a_replace_waits_and_the_ledger_agrees() {
    let env = Env::new("replace_then_append");
    two_files(&env);
    // Hold the replace inside its transaction: its first statement drops a staging table
    // that this session keeps locked.
    let mut holder = client();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute(&format!(
        "CREATE TABLE {s}.weather__tier_new (x int); LOCK TABLE {s}.weather__tier_new IN ACCESS SHARE MODE",
        s = env.schema
    ))
    .unwrap();
    let holder_pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let mut replace = spawn(env.tier(&["load", "weather"]));
    let replace_pid = wait_for("the replace to start", &mut replace, || blocked_by(holder_pid, &[]).first().copied())
        .expect("the replace ended before it reached the staging table");
    let append_file = env.data().join("append.json");
    let mut append = spawn(env.tier(&["load", "weather", "--from", append_file.to_str().unwrap()]));
    // The append must wait for the replace (before the fix it committed into the table the
    // replace then swapped out, and stayed `ok` in the ledger).
    let waiting = wait_for("the append to wait", &mut append, || blocked_by(replace_pid, &[holder_pid]).first().copied());
    assert!(waiting.is_some(), "the append finished while a replace of its table was running");
    tx.rollback().unwrap();
    finish(replace);
    finish(append);
    assert_eq!(env.count("weather"), 6, "the replace's 4 rows, then the append's 2");
    assert_ledger_agrees(&env, "weather");
}

#[test]
fn a_replace_during_an_append_waits_and_the_ledger_agrees() {
    let env = Env::new("append_then_replace");
    two_files(&env);
    // Hold the append in its COPY: this session keeps the table locked against writes.
    let mut holder = client();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute(&format!("LOCK TABLE {}.weather IN SHARE MODE", env.schema)).unwrap();
    let holder_pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let append_file = env.data().join("append.json");
    let mut append = spawn(env.tier(&["load", "weather", "--from", append_file.to_str().unwrap()]));
    let append_pid = wait_for("the append to reach COPY", &mut append, || blocked_by(holder_pid, &[]).first().copied())
        .expect("the append ended before its COPY");
    let mut replace = spawn(env.tier(&["load", "weather"]));
    wait_for("the replace to wait", &mut replace, || {
        let mut waiting = blocked_by(append_pid, &[holder_pid]);
        waiting.extend(blocked_by(holder_pid, &[append_pid]));
        waiting.first().copied()
    })
    .expect("the replace finished while an append of its table was running");
    tx.rollback().unwrap();
    finish(append);
    finish(replace);
    // The replace came last: its rows only, and the append is marked as replaced.
    assert_eq!(env.count("weather"), 4);
    assert_ledger_agrees(&env, "weather");
    let statuses = env.query_strings("SELECT status FROM {s}.tier_loads ORDER BY id");
    assert_eq!(statuses.iter().map(|r| r[0].as_deref().unwrap()).collect::<Vec<_>>(), ["replaced", "replaced", "ok"]);
    // The superseded append may now load again: its rows are not in the table.
    let (code, _, err) = run(env.tier(&["load", "weather", "--from", append_file.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.count("weather"), 6);
    assert_ledger_agrees(&env, "weather");
}

#[test]
fn a_damaged_line_is_one_reject_and_swallows_nothing() {
    let env = Env::new("damaged_lines");
    let good = |i: usize| weather_line("Oslo", &format!("2019-06-04 {:02}:{:02}:00", i / 60 % 24, i % 60), "0.5");
    let mut lines = vec![good(0)];
    // An unclosed array inside a value, then 200 good records.
    lines.push("{\"weather_data.city\": \"Oslo\", \"weather_data.currently_humidity\": [1, 2,".to_string());
    lines.extend((1..=200).map(good));
    // A stray closer and text after the closing brace: one record each.
    lines.push("{\"weather_data.city\": \"Oslo\", \"weather_data.date_time\": \"2019-06-05 00:00:00\"]}".to_string());
    lines.push("{\"weather_data.city\": \"Oslo\", \"weather_data.date_time\": \"2019-06-05 00:00:01\"}}".to_string());
    lines.push("{[".to_string());
    lines.push(good(201));
    env.write("weather.json", format!("[{}", lines.join(",\n")));
    let (code, _, err) = run(env.tier(&["load", "weather"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.count("weather"), 202);
    let rejects = env.query_strings("SELECT line::text, reason FROM {s}.weather_rejects ORDER BY line");
    let expect: Vec<Vec<Option<String>>> =
        [2, 203, 204, 205].iter().map(|l| vec![Some(l.to_string()), Some("malformed".to_string())]).collect();
    assert_eq!(rejects, expect);
    let ledger = env.query_strings("SELECT records::text, loaded::text, rejected::text FROM {s}.tier_loads");
    assert_eq!(ledger[0], [Some("206".to_string()), Some("202".to_string()), Some("4".to_string())]);
}

/// The same text cast by tier and by the server: equal values or both refusing, apart
/// from the documented policy (docs/contracts.md, "Casts").
mod differential {
    use rand::{Rng, SeedableRng};
    use tier::values::number::{parse_float, parse_int, Float, Int};
    use tier::values::timestamp::parse_micros;

    use crate::common::client;

    fn server(c: &mut postgres::Client, sql: &str, text: &str) -> Option<postgres::Row> {
        c.query_one(sql, &[&text]).ok()
    }

    fn timestamp_texts() -> Vec<String> {
        let dates =
            ["2019-05-13", "2016-12-31", "2020-02-29", "2019-02-29", "0001-01-01", "9999-12-31", "2019-13-01", "2019-04-31", "1969-12-31"];
        let times =
            ["14:23:41", "00:00:00", "23:59:59", "23:59:60", "12:30:60", "24:00:00", "24:00:01", "12:60:00", "25:00:00", "14:23", "1:2:3"];
        let fractions = [
            "",
            ".",
            ".5",
            ".0000005",
            ".0000015",
            ".0000025",
            ".0000035",
            ".1234565",
            ".1234575",
            ".1234574999999999999999",
            ".9999995",
            ".9999994999",
            ".99999949999999999999",
            ".4999995",
            ".000000",
            ".1",
            ".123456",
            ".1234567",
            ".0000004",
        ];
        let zones = ["", "Z", "z", "+02:00", "-0230", "+15:59", "-15:59", "+16:00", "+02", "+00:00", "-00", " UTC", " Z", "+02:60", "+2"];
        let mut out = Vec::new();
        for d in dates {
            for t in times {
                for f in fractions {
                    for z in zones {
                        for sep in [" ", "T"] {
                            // Every time with every date would be large: a fixed subset.
                            if (d.len() + t.len() * 3 + f.len() * 7 + z.len() * 11 + sep.len()) % 5 == 0 || d == "2016-12-31" {
                                out.push(format!("{d}{sep}{t}{f}{z}"));
                            }
                        }
                    }
                }
            }
        }
        // Leap seconds with fractions; midnight as 24:00; whitespace, ASCII and not.
        for f in ["", ".0", ".5", ".0000004", ".0000005", ".0000006", ".9999999"] {
            out.push(format!("2016-12-31 23:59:60{f}"));
            out.push(format!("2016-12-31 24:00:00{f}"));
        }
        for ws in [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u{a0}", "\u{2028}", "\u{3000}", "\u{feff}"] {
            out.push(format!("{ws}2019-05-13 14:23:41"));
            out.push(format!("2019-05-13T14:23:41Z{ws}"));
        }
        // Random fractions of 1 to 25 digits, and the forms tier does not accept.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..400 {
            let n = rng.gen_range(1..=25);
            let digits: String = (0..n).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
            out.push(format!("2019-05-13 14:23:59.{digits}"));
        }
        out.extend(
            ["20190513T142341", "2019-05-13T14:23", "2019-05-13", "May 13 2019 14:23:41", "2019-05-13 14:23:41 Europe/Oslo"]
                .map(String::from),
        );
        out
    }

    /// Forms docs/contracts.md says tier does not accept although the server does.
    fn documented_refusal(text: &str) -> bool {
        let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let b = t.as_bytes();
        t.len() < 16
            || !(b[4] == b'-' && b[7] == b'-' && matches!(b[10], b' ' | b'T' | b't') && b[13] == b':')
            // a fraction after the minutes (the server reads `14:23.5` as minutes and seconds)
            || b.get(16) == Some(&b'.')
            // seconds of one digit
            || (b.get(16) == Some(&b':') && !b.get(17..19).is_some_and(|s| s.iter().all(u8::is_ascii_digit)))
            // a point with no digits after it
            || t.split('.').skip(1).any(|after| !after.starts_with(|c: char| c.is_ascii_digit()))
            || t.contains(" UTC")
            || t.contains(" Z")
            || t.contains('/')
            || t.len() > 64
            // a zone offset of one digit
            || t.rsplit(['+', '-']).next().is_some_and(|z| z.len() == 1 && t.len() > 16)
    }

    #[test]
    fn timestamps_agree_with_the_server() {
        let mut c = client();
        c.batch_execute("SET TimeZone = 'UTC'").unwrap();
        let sql = "SELECT (extract(epoch FROM $1::text::timestamptz) * 1000000)::bigint";
        let (mut same, mut policy) = (0, 0);
        for text in timestamp_texts() {
            let ours = parse_micros(&text);
            let theirs: Option<i64> = server(&mut c, sql, &text).map(|r| r.get(0));
            if ours == theirs {
                same += 1;
                continue;
            }
            assert!(ours.is_none() && documented_refusal(&text), "{text:?}: tier {ours:?}, PostgreSQL {theirs:?}");
            policy += 1;
        }
        assert!(same > 1500, "{same} texts compared equal, {policy} refused by policy");
        // Naive times read in a zone (a contract's `timezone`), across both changes of
        // summer time, as the server reads them with that TimeZone.
        for zone in ["Europe/Oslo", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"] {
            c.batch_execute(&format!("SET TimeZone = '{zone}'")).unwrap();
            let z = tier::values::timestamp::Zone::named(zone).unwrap();
            for day in ["2019-03-10", "2019-03-31", "2019-04-07", "2019-10-06", "2019-10-27", "2019-11-03", "2019-06-15"] {
                for time in
                    ["00:30:00", "01:30:00", "01:59:59", "02:00:00", "02:15:00", "02:30:00", "02:45:00", "03:00:00", "03:30:00", "12:00:00"]
                {
                    for suffix in ["", "Z", "+05:30"] {
                        let text = format!("{day} {time}{suffix}");
                        let theirs: Option<i64> = server(&mut c, sql, &text).map(|r| r.get(0));
                        assert_eq!(tier::values::timestamp::parse_micros_in(&text, &z), theirs, "{text:?} in {zone}");
                    }
                }
            }
        }
    }

    use tier::values::timestamp::{parse_date_as, parse_timestamp, EpochUnit, Format, Zone};

    /// Exact microseconds of an epoch in SQL: the decimal times the unit, rounded half to
    /// even (numeric arithmetic, no double on the way).
    const EXACT_EPOCH: &str = "SELECT CASE WHEN abs(x - trunc(x)) = 0.5 THEN 2 * round(x / 2) ELSE round(x) END::bigint
                               FROM (SELECT $1::text::numeric * $2::text::numeric AS x) v";

    #[test]
    fn epochs_agree_with_the_server() {
        let mut c = client();
        c.batch_execute("SET TimeZone = 'UTC'").unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for (unit, name, per_unit) in
            [(EpochUnit::Seconds, "second", 1_000_000i64), (EpochUnit::Millis, "millisecond", 1000), (EpochUnit::Micros, "microsecond", 1)]
        {
            let format = Format::Epoch(unit);
            // Whole epochs: the server's own `'epoch' + n * interval '1 <unit>'`.
            let mut whole: Vec<i64> = vec![0, 1, -1, 1_557_757_421, -62_135_596_800, 253_402_300_799, 4_102_444_800];
            whole.extend((0..300).map(|_| rng.gen_range(-62_135_596_800i64..253_402_300_799)));
            for seconds in whole {
                let n = match unit {
                    EpochUnit::Seconds => seconds,
                    EpochUnit::Millis => seconds.saturating_mul(1000) + rng.gen_range(0..1000),
                    EpochUnit::Micros => seconds.saturating_mul(1_000_000) + rng.gen_range(0..1_000_000),
                };
                // `'epoch' + n * interval '1 <unit>'`, whole seconds and the rest apart: the
                // server multiplies an interval in double precision, which past 2^53
                // microseconds (the year 2255) is not exact any more.
                let per_second = 1_000_000 / per_unit;
                let sql = format!(
                    "SELECT (extract(epoch FROM 'epoch'::timestamptz + ($1::text::bigint / {per_second}) * interval '1 second'
                     + ($1::text::bigint % {per_second}) * interval '1 {name}') * 1000000)::bigint"
                );
                let theirs: Option<i64> = server(&mut c, &sql, &n.to_string()).map(|r| r.get(0));
                assert_eq!(parse_timestamp(&n.to_string(), &format, None), theirs, "{n} as epoch {name}s");
                assert_eq!(parse_timestamp(&format!(" {n} "), &format, None), theirs, "{n} as text with spaces");
            }
            // Fractions, exponents and far instants: exact, against numeric arithmetic.
            let mut texts: Vec<String> = [
                "1557757421.5",
                "1557757421.0000005",
                "1557757421.0000015",
                "-1.5",
                "-2.5",
                "1.5e3",
                "2.5E-1",
                "-0.0000005",
                "253402300.7999999995",
            ]
            .map(String::from)
            .to_vec();
            for _ in 0..300 {
                let digits = rng.gen_range(1..=12);
                let frac: String = (0..digits).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
                // Up to about 2096 in the unit.
                let whole = rng.gen_range(0..4_000_000_000i64 * (1_000_000 / per_unit));
                texts.push(format!("{}{whole}.{frac}", if rng.gen_bool(0.3) { "-" } else { "" }));
            }
            for text in texts {
                let theirs: Option<i64> = c.query_one(EXACT_EPOCH, &[&text, &per_unit.to_string()]).ok().map(|r| r.get(0));
                let ours = parse_timestamp(&text, &format, None);
                match ours {
                    Some(us) => assert_eq!(Some(us), theirs, "{text} as epoch {name}s"),
                    // Refused only outside years 1 to 9999.
                    None => {
                        let us = theirs.unwrap_or_else(|| panic!("{text}: the server reads no number"));
                        assert!(!(-62_135_596_800_000_000..=253_402_300_799_999_999).contains(&us), "{text} as epoch {name}s refused");
                    }
                }
            }
        }
    }

    #[test]
    fn rfc2822_agrees_with_the_server() {
        let mut c = client();
        c.batch_execute("SET TimeZone = 'UTC'").unwrap();
        let sql = "SELECT (extract(epoch FROM $1::text::timestamptz) * 1000000)::bigint";
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let zones =
            ["GMT", "UT", "UTC", "Z", "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT", "+0000", "+0200", "-0530", "+1400", "-1200"];
        let mut same = 0;
        for _ in 0..2000 {
            let (y, m, d) = (rng.gen_range(1..=9999), rng.gen_range(0..12), rng.gen_range(1..=31));
            let (h, mi, se) = (rng.gen_range(0..24), rng.gen_range(0..60), rng.gen_range(0..61));
            let zone = zones[rng.gen_range(0..zones.len())];
            let clock = match rng.gen_bool(0.2) {
                true => format!("{h:02}:{mi:02}"),
                false => format!("{h:02}:{mi:02}:{se:02}"),
            };
            let body = format!("{d:02} {} {y:04} {clock} {zone}", months[m]);
            // Half of them with the day's name, which must be the date's.
            let text = match rng.gen_bool(0.5) {
                true => match c.query_one("SELECT to_char($1::text::date, 'Dy')", &[&format!("{y:04}-{:02}-{d:02}", m + 1)]) {
                    Ok(row) => format!("{}, {body}", row.get::<_, String>(0)),
                    Err(_) => body,
                },
                false => body,
            };
            let ours = parse_timestamp(&text, &Format::Rfc2822, None);
            let theirs: Option<i64> = server(&mut c, sql, &text).map(|r| r.get(0));
            match ours {
                Some(_) => {
                    assert_eq!(ours, theirs, "{text:?}");
                    same += 1;
                }
                // Refused: an impossible date (the server refuses it too) or a leap second
                // in a form the server reads otherwise.
                None => assert!(theirs.is_none() || se == 60, "{text:?}: tier refuses, PostgreSQL reads {theirs:?}"),
            }
        }
        assert!(same > 1500, "{same} agreed");
        // What tier refuses although the server reads it: named in docs/contracts.md.
        for text in ["Tue, 13 May 2019 14:23:41 GMT", "Mon, 13 May 19 14:23:41 GMT", "Mon, 13 May 2019 14:23:41.5 GMT"] {
            assert_eq!(parse_timestamp(text, &Format::Rfc2822, None), None, "{text:?}");
        }
    }

    /// A strftime pattern, the same pattern for the server's `to_timestamp`, and a value.
    fn patterned(rng: &mut rand_chacha::ChaCha8Rng) -> Vec<(&'static str, &'static str, String)> {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let mut out = Vec::new();
        for _ in 0..400 {
            let (y, m, d) = (rng.gen_range(1..=9999), rng.gen_range(1..=12), rng.gen_range(1..=31));
            let (h, mi, se) = (rng.gen_range(0..24), rng.gen_range(0..60), rng.gen_range(0..60));
            let us = rng.gen_range(0..1_000_000);
            out.push(("%d/%m/%Y %H:%M", "DD/MM/YYYY HH24:MI", format!("{d:02}/{m:02}/{y:04} {h:02}:{mi:02}")));
            out.push(("%m/%d/%Y %H:%M:%S", "MM/DD/YYYY HH24:MI:SS", format!("{m:02}/{d:02}/{y:04} {h:02}:{mi:02}:{se:02}")));
            out.push(("%Y-%m-%d %H:%M:%S%.6f", "YYYY-MM-DD HH24:MI:SS.US", format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{se:02}.{us:06}")));
            out.push(("%d.%m.%Y", "DD.MM.YYYY", format!("{d:02}.{m:02}.{y:04}")));
            out.push(("%Y%m%d%H%M%S", "YYYYMMDDHH24MISS", format!("{y:04}{m:02}{d:02}{h:02}{mi:02}{se:02}")));
            out.push(("%d %b %Y %H:%M", "DD Mon YYYY HH24:MI", format!("{d:02} {} {y:04} {h:02}:{mi:02}", months[m - 1])));
            let h12 = if h % 12 == 0 { 12 } else { h % 12 };
            let ampm = if h < 12 { "AM" } else { "PM" };
            out.push(("%m/%d/%Y %I:%M %p", "MM/DD/YYYY HH12:MI AM", format!("{m:02}/{d:02}/{y:04} {h12:02}:{mi:02} {ampm}")));
        }
        out
    }

    #[test]
    fn patterns_agree_with_the_servers_to_timestamp() {
        let mut c = client();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let cases = patterned(&mut rng);
        for zone in ["UTC", "Europe/Oslo"] {
            c.batch_execute(&format!("SET TimeZone = '{zone}'")).unwrap();
            let z = Zone::named(zone).unwrap();
            let (mut same, mut refused) = (0, 0);
            for (ours_pattern, pg_pattern, text) in &cases {
                let format = Format::named(ours_pattern).unwrap();
                let ours = parse_timestamp(text, &format, Some(&z));
                let theirs: Option<i64> = c
                    .query_one("SELECT (extract(epoch FROM to_timestamp($1, $2)) * 1000000)::bigint", &[text, pg_pattern])
                    .ok()
                    .map(|r| r.get(0));
                match ours {
                    Some(_) => {
                        assert_eq!(ours, theirs, "{text:?} as {ours_pattern} in {zone}");
                        same += 1;
                    }
                    // An impossible date (the 31st of a short month), which the server refuses
                    // too, or a naive time before 1900 in a zone (docs/contracts.md, "Casts").
                    None => {
                        let before_1900 = zone != "UTC" && theirs.is_some_and(|us| us < -2_208_988_800_000_000 + 86_400_000_000);
                        assert!(theirs.is_none() || before_1900, "{text:?} as {ours_pattern} in {zone}: tier refuses, server {theirs:?}");
                        refused += 1;
                    }
                }
                if !ours_pattern.contains('H') && !ours_pattern.contains('I') {
                    let theirs: Option<i32> =
                        c.query_one("SELECT to_date($1, $2) - date '1970-01-01'", &[text, pg_pattern]).ok().map(|r| r.get(0));
                    assert_eq!(parse_date_as(text, &format), theirs, "{text:?} as a date in {ours_pattern}");
                }
            }
            assert!(same > 2000 && refused > 0, "{same} agreed, {refused} refused by both");
        }
        // Strict where the server is lenient: text left over is refused.
        let format = Format::named("%d/%m/%Y %H:%M").unwrap();
        assert_eq!(parse_timestamp("13/05/2019 14:23 and more", &format, None), None);
    }

    fn number_texts(rng: &mut rand_chacha::ChaCha8Rng) -> Vec<String> {
        let mut out: Vec<String> = [
            "0",
            "-0",
            "+5",
            " 5 ",
            "5 ",
            "\t5\n",
            "\x0b5\x0c",
            "\u{a0}5",
            "5\u{2028}",
            "\u{3000}5",
            "٣",
            "2147483647",
            "2147483648",
            "-2147483648",
            "-2147483649",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "00012",
            "+-1",
            "--1",
            "1 2",
            "",
            " ",
            "0x10",
            "0X1p3",
            "1_000",
            "1,5",
            "4.0",
            "4.",
            ".4",
            "3.5",
            "4e0",
            "40e-1",
            "4.9999999999999999",
            "5.0000000000000001",
            "1e",
            "1e+",
            "e5",
            ".",
            "-.5e-3",
            "1.7976931348623157e308",
            "1.7976931348623159e308",
            "1e308",
            "1e309",
            "4.9e-324",
            "2.4e-324",
            "2.5e-324",
            "2.4703282292062328e-324",
            "2.4703282292062327e-324",
            "1e-400",
            "-1e-400",
            "0e-400",
            "0.000e999999",
            "NaN",
            "nan",
            "-NaN",
            "Infinity",
            "-Infinity",
            "inf",
            "-inf",
            "infinity",
            "1e400",
            "-1e400",
            "123456789012345678901234567890",
            "0.1000000000000000055511151231257827",
            "9007199254740993",
            "2.2250738585072011e-308",
            "2.2250738585072014e-308",
        ]
        .map(String::from)
        .to_vec();
        for _ in 0..1500 {
            let int_digits = rng.gen_range(0..20);
            let frac_digits = rng.gen_range(0..20);
            let digits = |n: usize, rng: &mut rand_chacha::ChaCha8Rng| -> String {
                (0..n).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
            };
            let mut t = String::new();
            if rng.gen_bool(0.3) {
                t.push('-');
            }
            t.push_str(&digits(int_digits, rng));
            if frac_digits > 0 || rng.gen_bool(0.2) {
                t.push('.');
                t.push_str(&digits(frac_digits, rng));
            }
            if rng.gen_bool(0.4) {
                t.push_str(&format!("e{}", rng.gen_range(-340..340)));
            }
            out.push(t);
        }
        out
    }

    #[test]
    fn numbers_agree_with_the_server() {
        let mut c = client();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let texts = number_texts(&mut rng);
        let mut compared = 0;
        for text in &texts {
            // double precision
            let theirs: Option<f64> = server(&mut c, "SELECT $1::text::float8", text).map(|r| r.get(0));
            match parse_float(text) {
                Float::Value(v) => {
                    let w = theirs.unwrap_or_else(|| panic!("{text:?}: tier {v}, PostgreSQL refuses"));
                    assert_eq!(v.to_bits(), w.to_bits(), "{text:?}: tier {v:e}, PostgreSQL {w:e}");
                    compared += 1;
                }
                // Policy: NaN is stored as NULL (counted); the server reads it as NaN.
                Float::NaN => assert!(theirs.is_some_and(f64::is_nan), "{text:?}"),
                // Policy: infinities and hexadecimal floats are refused; else both refuse.
                Float::Invalid => {
                    let lower = text.trim().to_ascii_lowercase();
                    let policy = lower.contains("inf") || lower.trim_start_matches(['-', '+']).starts_with("0x");
                    assert!(theirs.is_none() || policy, "{text:?}: tier refuses, PostgreSQL reads {theirs:?}");
                }
            }
            // integer and bigint
            for (bits, cast) in [(32, "integer"), (64, "bigint")] {
                let theirs: Option<i64> = server(&mut c, &format!("SELECT $1::text::{cast}::bigint"), text).map(|r| r.get(0));
                match parse_int(text, bits) {
                    Int::Value(v) => match theirs {
                        Some(w) => assert_eq!(v, w, "{text:?} as {cast}"),
                        // Policy: a whole number written with a fraction or an exponent.
                        None => assert!(text.contains(['.', 'e', 'E']), "{text:?} as {cast}: tier {v}, PostgreSQL refuses"),
                    },
                    Int::NaN => assert!(theirs.is_none(), "{text:?}"),
                    Int::NotWhole | Int::Invalid => {
                        assert!(theirs.is_none(), "{text:?} as {cast}: tier refuses, PostgreSQL reads {theirs:?}")
                    }
                }
            }
        }
        assert!(compared > 1000, "{compared} doubles compared");
        // numeric: the same canonical text as the server's output (scale kept).
        let mut numerics = 0;
        for text in &texts {
            let theirs: Option<String> = server(&mut c, "SELECT $1::text::numeric::text", text).map(|r| r.get(0));
            match tier::values::number::parse_numeric(text) {
                Ok(ours) => {
                    assert_eq!(Some(&ours), theirs.as_ref(), "{text:?} as numeric");
                    numerics += 1;
                }
                // Policy: NaN is stored as NULL; beyond 1000 digits or exponents, refused.
                // (the server's numeric reads NaN but not -NaN; both are NULL here)
                Err(tier::values::number::NumericError::NaN) => assert!(matches!(theirs.as_deref(), Some("NaN") | None), "{text:?}"),
                Err(tier::values::number::NumericError::Invalid) => {
                    let lower = text.trim().to_ascii_lowercase();
                    let policy = lower.contains("inf") || lower.contains("e9999") || lower.len() > 1000;
                    assert!(theirs.is_none() || policy, "{text:?}: tier refuses, PostgreSQL reads {theirs:?}");
                }
            }
        }
        assert!(numerics > 1000, "{numerics} numerics compared");
    }

    #[test]
    fn booleans_and_dates_agree_with_the_server() {
        let mut c = client();
        let booleans = [
            "t",
            "f",
            "true",
            "false",
            "TRUE",
            "tRuE",
            "tr",
            "tru",
            "fa",
            "fals",
            "y",
            "ye",
            "yes",
            "n",
            "no",
            "on",
            "off",
            "of",
            "o",
            "1",
            "0",
            " true ",
            "\ttrue\n",
            "\u{a0}true",
            "2",
            "-1",
            "truee",
            "yess",
            "oui",
            "",
            " ",
            "on ",
            "t rue",
        ];
        for text in booleans {
            let theirs: Option<bool> = server(&mut c, "SELECT $1::text::boolean", text).map(|r| r.get(0));
            assert_eq!(tier::values::number::parse_bool(text), theirs, "{text:?} as boolean");
        }
        let dates = [
            "2019-05-13",
            "0001-01-01",
            "9999-12-31",
            "2020-02-29",
            "2019-02-29",
            "2019-13-01",
            "2019-04-31",
            " 2019-05-13 ",
            "1969-12-31",
        ];
        for text in dates {
            let theirs: Option<i32> = server(&mut c, "SELECT $1::text::date - date '1970-01-01'", text).map(|r| r.get(0));
            assert_eq!(tier::values::timestamp::parse_date(text), theirs, "{text:?} as date");
        }
        // Forms the server reads and tier refuses (docs/contracts.md, "Casts").
        for text in ["2019-5-13", "13.05.2019", "May 13 2019", "20190513", "2019-05-13 14:23:41", "2019-05-13T00:00:00Z"] {
            assert_eq!(tier::values::timestamp::parse_date(text), None, "{text:?}");
        }
    }
}

#[test]
fn user_errors_have_their_documented_codes() {
    let env = Env::new("exitcodes");
    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 14:05:13", "0.5")));
    // An unwritable TMPDIR fails the duplicate check's temporary file: input, not a bug.
    let mut cmd = env.tier(&["load", "weather"]);
    cmd.env("TMPDIR", env.data().join("no-such-dir"));
    let (code, _, err) = run(cmd);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no-such-dir"), "the message names the directory: {err}");
    // validate pointed at a directory where the export should be.
    let (code, _, err) = run(env.tier(&["load", "weather"]));
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("weather.json")).unwrap();
    let mut cmd = std::process::Command::new(tier_bin());
    cmd.args(["--data-dir", dir.path().to_str().unwrap(), "validate", "weather", "--database-url", server_url(), "--schema", &env.schema]);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("weather.json") && err.contains("directory"), "{err}");
    // tier db: no cluster yet, and a cluster directory that cannot be one.
    let mut cmd = env.tier_plain(&["db", "url"]);
    cmd.env("TIER_PG_DIR", dir.path().join("none"));
    let (code, _, err) = run(cmd);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("none"), "{err}");
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let mut cmd = env.tier_plain(&["db", "start"]);
    cmd.env("TIER_PG_DIR", dir.path().join("file"));
    let (code, _, err) = run(cmd);
    assert!(code != 70 && code != 0, "{code}: {err}");
    assert!(err.contains("file"), "{err}");
}

#[test]
fn partitioned_queries_read_every_row_at_the_ends_of_bigint() {
    let env = Env::new("partition_ends");
    client()
        .batch_execute(&format!(
            "CREATE SCHEMA {s}; CREATE TABLE {s}.extremes (n bigint);
             INSERT INTO {s}.extremes VALUES (-9223372036854775808), (-9223372036854775807), (-1), (0), (1),
               (9223372036854775806), (9223372036854775807), (NULL)",
            s = env.schema
        ))
        .unwrap();
    let sql = env.write("extremes.sql", "SELECT n FROM extremes");
    // NDJSON: the split read (CSV is one COPY whatever --partitions says).
    for parts in ["2", "3", "4", "16"] {
        let (code, out, err) =
            run(env.tier(&["query", sql.to_str().unwrap(), "--format", "ndjson", "--partition-on", "n", "--partitions", parts]));
        assert_eq!(code, 0, "{parts}: {err}");
        let values: Vec<String> = out
            .lines()
            .map(|l| match serde_json::from_str::<serde_json::Value>(l).unwrap()["n"].clone() {
                serde_json::Value::Null => String::new(),
                n => n.to_string(),
            })
            .collect();
        let mut rows: Vec<&str> = values.iter().map(String::as_str).collect();
        rows.sort();
        let mut expect =
            vec!["-9223372036854775808", "-9223372036854775807", "-1", "0", "1", "9223372036854775806", "9223372036854775807", ""];
        expect.sort();
        assert_eq!(rows, expect, "{parts} partitions");
    }
}

#[test]
fn partition_bounds_run_read_only() {
    let env = Env::new("partition_readonly");
    client()
        .batch_execute(&format!(
            "CREATE SCHEMA {s}; CREATE SEQUENCE {s}.seq; CREATE TABLE {s}.t AS SELECT generate_series(1, 10) AS n",
            s = env.schema
        ))
        .unwrap();
    // A query whose every run advances a sequence: without --write nothing may run it.
    let sql = env.write("writes.sql", format!("SELECT n, nextval('{}.seq') AS v FROM t", env.schema));
    let (code, _, err) = run(env.tier(&["query", sql.to_str().unwrap(), "--partition-on", "n", "--partitions", "2"]));
    assert_ne!(code, 0, "a query that writes must fail without --write");
    assert!(err.contains("read-only"), "{err}");
    let called: bool = client().query_one(&format!("SELECT is_called FROM {}.seq", env.schema), &[]).unwrap().get(0);
    assert!(!called, "the sequence was advanced by a query run without --write");
}

#[test]
fn the_local_cluster_needs_its_password() {
    let env = Env::new("cluster_password");
    let cluster = LocalCluster::start(&env, "password");
    // The URL names the password file, never the password.
    assert!(cluster.url.contains("passfile="), "{}", cluster.url);
    let passfile = cluster.pg.join("tier.pgpass");
    let text = std::fs::read_to_string(&passfile).unwrap();
    let password = text.trim().rsplit(':').next().unwrap().to_string();
    assert!(password.len() >= 32);
    assert!(!cluster.url.contains(&password));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&passfile).unwrap().permissions().mode() & 0o777, 0o600);
    let (code, out, err) = cluster.db(&env, "url");
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(&password) && !err.contains(&password));
    // Without the password the server refuses; with it, it answers, and trusts no one.
    let port = cluster.url.split(':').nth(2).unwrap().split('/').next().unwrap();
    let bare = format!("postgresql://postgres@127.0.0.1:{port}/postgres");
    let refused = postgres::Client::connect(&bare, postgres::NoTls).err().expect("a connection without the password is refused");
    assert!(refused.to_string().contains("password") || format!("{refused:?}").contains("password"), "{refused:?}");
    let mut c = postgres::Client::connect(&format!("postgresql://postgres:{password}@127.0.0.1:{port}/postgres"), postgres::NoTls).unwrap();
    let trust: i64 = c.query_one("SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'", &[]).unwrap().get(0);
    assert_eq!(trust, 0);
    // tier finds the password by itself, from the URL it printed.
    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 14:05:13", "0.5")));
    let mut cmd = env.tier_plain(&["load", "weather", "--database-url", &cluster.url]);
    cmd.env_remove("DATABASE_URL");
    let (code, _, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains(&password));
}

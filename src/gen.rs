//! Sample exports in the BI tool's framing, with a planted share of every known defect,
//! reproducible by seed. `Planted` says exactly what a correct load must report.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use crate::quality::{BAD_NUMBER, BAD_TIMESTAMP, DUPLICATE, MISSING_REQUIRED, OUT_OF_RANGE};
use crate::transform::parse::MALFORMED;
use crate::values::timestamp::civil_from_days;

pub struct GenOptions {
    pub events: u64,
    pub weather: u64,
    pub seed: u64,
    /// Share of records that carry a defect (rejected or warned about), 0..=1.
    pub defect_share: f64,
}

/// What a generated file contains, in the terms `tier load` reports.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Planted {
    pub records: u64,
    pub loaded: u64,
    pub rejected: BTreeMap<String, u64>,
    pub nan_as_null: u64,
    pub extra_keys: u64,
}

pub const MANIFEST: &str = "gen-manifest.json";

/// The datasets this generator writes (the original exports, with their own defects);
/// any other declared dataset gets `sample`'s data.
pub const ORIGINALS: [&str; 2] = ["track_events", "weather"];

const CITIES: [(&str, &str); 6] = [
    ("Europe/Berlin", "Berlin"),
    ("Europe/Oslo", "Oslo"),
    ("Europe/Paris", "Paris"),
    ("Europe/Zurich", "Zurich"),
    ("Europe/Vienna", "Vienna"),
    ("Europe/Madrid", "Madrid"),
];
const EVENTS: [&str; 6] = ["App Opened", "Signup Started", "Ride Started", "Ride Finished", "Payment Added", "Rating Submitted"];
/// 2019-05-01 00:00:00 UTC
const START: i64 = 1_556_668_800;

/// Writes `track_events.json`, `weather.json` and the manifest into `out`.
pub fn generate(opts: &GenOptions, out: &Path) -> Result<BTreeMap<String, Planted>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut manifest = BTreeMap::new();
    let events = write_file(&out.join("track_events.json"), opts.events, |i| event(&mut rng, i, opts.defect_share))?;
    manifest.insert("track_events".to_string(), events);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x5eed);
    let weather = write_file(&out.join("weather.json"), opts.weather, |i| weather(&mut rng, i, opts.defect_share))?;
    manifest.insert("weather".to_string(), weather);
    std::fs::write(out.join(MANIFEST), serde_json::to_string_pretty(&manifest)?)?;
    Ok(manifest)
}

/// One generated record: its text and what it should count as.
struct Record {
    text: String,
    /// `None` when loaded.
    reason: Option<&'static str>,
    nan: u64,
    extra_keys: u64,
}

fn write_file(path: &Path, n: u64, mut make: impl FnMut(u64) -> Record) -> Result<Planted> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut planted = Planted::default();
    let mut last_clean: Option<Record> = None;
    w.write_all(b"[")?;
    for i in 0..n {
        let mut rec = make(i);
        while rec.reason == Some(DUPLICATE) && rec.text.is_empty() {
            rec = match &last_clean {
                Some(c) => Record { text: c.text.clone(), reason: Some(DUPLICATE), nan: 0, extra_keys: c.extra_keys },
                None => make(i + n), // nothing to copy yet: draw again
            };
        }
        if i > 0 {
            w.write_all(b",\n")?;
        }
        w.write_all(rec.text.as_bytes())?;
        planted.records += 1;
        planted.extra_keys += rec.extra_keys;
        match rec.reason {
            None => {
                planted.loaded += 1;
                planted.nan_as_null += rec.nan;
                last_clean = Some(rec);
            }
            Some(r) => *planted.rejected.entry(r.to_string()).or_default() += 1,
        }
    }
    // Like the real export: the closing bracket is missing.
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(planted)
}

/// Which defect, if any, a record gets.
#[derive(Clone, Copy, PartialEq)]
enum Defect {
    None,
    Nan,
    Missing,
    BadTimestamp,
    BadNumber,
    OutOfRange,
    Duplicate,
    Malformed,
}

fn draw(rng: &mut ChaCha8Rng, share: f64) -> Defect {
    if !rng.gen_bool(share.clamp(0.0, 1.0)) {
        return Defect::None;
    }
    *[Defect::Nan, Defect::Missing, Defect::BadTimestamp, Defect::BadNumber, Defect::OutOfRange, Defect::Duplicate, Defect::Malformed]
        .choose(rng)
        .expect("non-empty")
}

fn ts(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn uuid(rng: &mut ChaCha8Rng) -> String {
    let b: [u8; 16] = rng.gen();
    let h = hex::encode_upper(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn finish(mut obj: Map<String, Value>, prefix: &str, rng: &mut ChaCha8Rng, reason: Option<&'static str>, nan: bool) -> Record {
    let mut extra = 0;
    if reason.is_none() && rng.gen_bool(0.01) {
        obj.insert(format!("{prefix}export_batch"), json!(rng.gen_range(1..100)));
        extra = 1;
    }
    if rng.gen_bool(0.02) {
        // Some exports drop the view prefix; the key still maps.
        if let Some(k) = obj.keys().find(|k| k.ends_with("event_name") || k.ends_with("city")).cloned() {
            let v = obj.remove(&k).expect("present");
            obj.insert(k.trim_start_matches(prefix).to_string(), v);
        }
    }
    let mut text = serde_json::to_string(&obj).expect("a map always serialises");
    if nan {
        text = text.replace("\"__NAN__\"", "NaN");
    }
    Record { text, reason, nan: nan as u64, extra_keys: extra }
}

fn malformed(rng: &mut ChaCha8Rng, prefix: &str, key: &str) -> Record {
    let text = if rng.gen_bool(0.5) {
        format!("{{\"{prefix}{key}\": \"Sign")
    } else {
        "#### export error: row could not be rendered ####".to_string()
    };
    Record { text, reason: Some(MALFORMED), nan: 0, extra_keys: 0 }
}

fn event(rng: &mut ChaCha8Rng, i: u64, share: f64) -> Record {
    const P: &str = "segment_tracks.";
    let defect = draw(rng, share);
    if defect == Defect::Malformed {
        return malformed(rng, P, "event_name");
    }
    if defect == Defect::Duplicate {
        return Record { text: String::new(), reason: Some(DUPLICATE), nan: 0, extra_keys: 0 };
    }
    let (tz, _) = CITIES[rng.gen_range(0..CITIES.len())];
    let t = START + (i as i64) * 7 + rng.gen_range(0..7);
    let ios = rng.gen_bool(0.5);
    let mut o = Map::new();
    let mut put = |k: &str, v: Value| {
        o.insert(format!("{P}{k}"), v);
    };
    put("original_timestamp_time", json!(ts(t)));
    put("event_name", json!(EVENTS[rng.gen_range(0..EVENTS.len())]));
    put("context_timezone", json!(tz));
    put("context_os_version", json!(if ios { "12.2" } else { "9" }));
    put("context_os_name", json!(if ios { "iOS" } else { "Android" }));
    put("context_device_type", json!(if ios { "ios" } else { "android" }));
    put("context_device_model", json!(if ios { "iPhone11,6" } else { "SM-G960F" }));
    put("context_device_manufacturer", json!(if ios { "Apple" } else { "samsung" }));
    put("context_device_id", json!(uuid(rng)));
    let version = ["3.0.5", "3.1.0", "3.2.1"][rng.gen_range(0..3)];
    put("context_app_version", json!(version));
    put("context_app_name", json!("Tier"));
    put("context_app_build", json!(format!("{version}.{}", rng.gen_range(1..9))));
    put("anonymous_id", json!(uuid(rng)));
    put("received_time", json!(ts(t + 5)));
    put("sent_time", json!(ts(t + 5)));
    let rating = if rng.gen_bool(0.1) {
        let r = rng.gen_range(1..=5);
        if rng.gen_bool(0.3) {
            json!(r.to_string())
        } else {
            json!(r)
        }
    } else {
        Value::Null
    };
    put("properties_rating", rating);
    let reason = match defect {
        Defect::Nan => {
            o.insert(format!("{P}properties_rating"), json!("__NAN__"));
            None
        }
        Defect::Missing => {
            match rng.gen_range(0..3) {
                0 => o.remove(&format!("{P}anonymous_id")),
                1 => o.insert(format!("{P}anonymous_id"), Value::Null),
                _ => o.insert(format!("{P}event_name"), json!("")),
            };
            Some(MISSING_REQUIRED)
        }
        Defect::BadTimestamp => {
            o.insert(format!("{P}sent_time"), json!("13/05/2019 14:23"));
            Some(BAD_TIMESTAMP)
        }
        Defect::BadNumber => {
            o.insert(format!("{P}properties_rating"), json!("five"));
            Some(BAD_NUMBER)
        }
        Defect::OutOfRange => {
            o.insert(format!("{P}properties_rating"), json!(7));
            Some(OUT_OF_RANGE)
        }
        _ => None,
    };
    finish(o, P, rng, reason, defect == Defect::Nan)
}

fn weather(rng: &mut ChaCha8Rng, i: u64, share: f64) -> Record {
    const P: &str = "weather_data.";
    let defect = draw(rng, share);
    if defect == Defect::Malformed {
        return malformed(rng, P, "city");
    }
    if defect == Defect::Duplicate {
        return Record { text: String::new(), reason: Some(DUPLICATE), nan: 0, extra_keys: 0 };
    }
    let (_, city) = CITIES[(i as usize) % CITIES.len()];
    // Every city reports about hourly; seconds vary like the real feed.
    let t = START + (i as i64 / CITIES.len() as i64) * 3600 + rng.gen_range(0..600);
    let temp = (rng.gen_range(-50..350) as f64) / 10.0 + 0.09;
    let rain = rng.gen_bool(0.2);
    let mut o = Map::new();
    let mut put = |k: &str, v: Value| {
        o.insert(format!("{P}{k}"), v);
    };
    put("date_time", json!(ts(t)));
    put("city", json!(city));
    put("currently_apparenttemperature", json!(temp - 1.0));
    put("currently_humidity", json!(rng.gen_range(20..100) as f64 / 100.0));
    put("currently_precipintensity", json!(if rain { rng.gen_range(1..500) as f64 / 10_000.0 } else { 0.0 }));
    put("currently_precipprobability", json!(if rain { 0.8 } else { 0.01 }));
    put("currently_preciptype", if rain { json!(if temp < 1.0 { "snow" } else { "rain" }) } else { Value::Null });
    put("currently_temperature", if rng.gen_bool(0.05) { json!(format!("{temp:.2}")) } else { json!(temp) });
    put("currently_visibility", json!(rng.gen_range(100..1600) as f64 / 100.0));
    put("currently_windspeed", json!(rng.gen_range(0..2000) as f64 / 100.0));
    let reason = match defect {
        Defect::Nan => {
            o.insert(format!("{P}currently_windspeed"), json!("__NAN__"));
            None
        }
        Defect::Missing => {
            let k = if rng.gen_bool(0.5) { "city" } else { "date_time" };
            o.insert(format!("{P}{k}"), Value::Null);
            Some(MISSING_REQUIRED)
        }
        Defect::BadTimestamp => {
            o.insert(format!("{P}date_time"), json!("2019-06-31 25:00:00"));
            Some(BAD_TIMESTAMP)
        }
        Defect::BadNumber => {
            o.insert(format!("{P}currently_temperature"), json!("n/a"));
            Some(BAD_NUMBER)
        }
        Defect::OutOfRange => {
            o.insert(format!("{P}currently_humidity"), json!(1.7));
            Some(OUT_OF_RANGE)
        }
        _ => None,
    };
    finish(o, P, rng, reason, defect == Defect::Nan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_like_the_export() {
        assert_eq!(ts(START), "2019-05-01 00:00:00");
        assert_eq!(ts(1_557_757_421), "2019-05-13 14:23:41");
    }

    #[test]
    fn same_seed_same_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let opts = GenOptions { events: 300, weather: 50, seed: 7, defect_share: 0.3 };
        let ma = generate(&opts, a.path()).unwrap();
        let mb = generate(&opts, b.path()).unwrap();
        assert_eq!(ma, mb);
        for f in ["track_events.json", "weather.json"] {
            assert_eq!(std::fs::read(a.path().join(f)).unwrap(), std::fs::read(b.path().join(f)).unwrap());
        }
        let e = &ma["track_events"];
        assert_eq!(e.records, 300);
        assert_eq!(e.loaded + e.rejected.values().sum::<u64>(), 300);
        assert!(e.rejected.len() >= 5, "{e:?}");
    }
}
